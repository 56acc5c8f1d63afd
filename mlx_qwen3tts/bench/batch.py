"""`bench --batch 1 2 4 8`: concurrent streams in one batch against one stream alone.

Per batch size, the streams start together (prefilled, then released in one step) and run a
fixed greedy budget; per round every size runs once, interleaved with the single-stream loop
(`generate_frames`, no engine), so all see the same machine load. Reported per size: aggregate
frames/s and its ratio to batch 1, per-stream ms/frame, and time to first audio for a stream
joining an idle engine and one joining a batch in full flow, beside that stream's prefill
alone and the single-stream loop's own first frame, so the wait for the batch shows apart.
"""

from __future__ import annotations

import statistics
import threading
import time

import mlx.core as mx
import numpy as np

from ..batch import BatchEngine
from ..generation import FrameStepper, generate_frames

JOIN_RUNNER_FRAMES = 2000  # streams in full flow while one joins; stopped once it has its frame
TEXTS = (
    "Hello there. This is a short benchmark sentence, read out loud at an even pace.",
    "A second voice reads another line, a little longer than the first one is.",
    "Numbers too: three, fourteen, one hundred and fifty nine.",
    "The last of the texts, so that prompts differ in length across the batch.",
)


def _speaker(tts, speaker: str | None) -> str | None:
    return (speaker or tts.speakers[0]) if tts.kind == "custom_voice" else None


def _prepared(tts, n: int, frames: int, speaker: str | None):
    kw = {"temperature": 0, "subtalker_temperature": 0, "max_new_tokens": frames + 1, "seed": 0}
    if tts.kind == "custom_voice":
        kw["speaker"] = _speaker(tts, speaker)
    elif tts.kind == "voice_design":
        kw["instruct"] = "A calm, clear adult voice."
    out = [tts.prepare(TEXTS[i % len(TEXTS)], **kw) for i in range(n)]
    mx.eval([p.prompt.prefill for p in out])  # made here, used on the streams' threads
    return out


def _solo(tts, prepared) -> tuple[float, float]:
    """The single-stream loop: (ms/frame in steady state, seconds from its start to its first frame)."""
    stamps, start = [], time.perf_counter()
    for frame, _ in generate_frames(tts.model.talker, prepared.prompt, prepared.sampling, prepared.seed):
        np.asarray(frame)
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1) * 1e3, stamps[0] - start


def _together(engine: BatchEngine, prepared: list) -> dict:
    """All `prepared` streams started in one step; aggregate and per-stream figures."""
    stamps: list[list[float]] = [[] for _ in prepared]
    errors = []

    def read(i):
        try:
            p = prepared[i]
            for _ in engine.frames(p.prompt, p.sampling, p.seed):
                stamps[i].append(time.perf_counter())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(prepared))]
    with engine.held():
        for t in threads:
            t.start()
        while engine.queued < len(prepared) and not errors and any(t.is_alive() for t in threads):
            time.sleep(0.002)
        start = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    frames = sum(len(s) for s in stamps)
    end = max(s[-1] for s in stamps)
    per_stream = [(s[-1] - s[0]) / max(len(s) - 1, 1) * 1e3 for s in stamps]
    return {"frames_per_s": frames / (end - start), "ms_per_frame": statistics.mean(per_stream)}


def _prefill_alone(engine: BatchEngine, prepared) -> float:
    """A stream's prefill on its own (the engine idle), timed as a join is: from the call."""
    stepper = FrameStepper(engine.talker, prepared.prompt, prepared.sampling, prepared.seed)
    start = time.perf_counter()
    mx.eval(*stepper.prefill())
    return time.perf_counter() - start


def _first_frame(engine: BatchEngine, prepared) -> float:
    """Seconds from starting a stream to its first frame, on the calling thread."""
    start = time.perf_counter()
    frames = engine.frames(prepared.prompt, prepared.sampling, prepared.seed)
    next(frames)
    first = time.perf_counter() - start
    frames.close()
    return first


def _longest_wait(stamps: list[float], start: float, end: float) -> float:
    """The longest gap between two of a stream's frames that overlaps `start` to `end`."""
    return max((b - a for a, b in zip(stamps, stamps[1:]) if b >= start and a <= end), default=0.0)


def _join_full(engine: BatchEngine, running: list, joiner) -> tuple[float, int, float]:
    """A stream joining `running` streams in full flow (their budgets outlast the join): its
    first frame's seconds, how many streams were stepping when it came, and the running
    streams' longest wait for a frame meanwhile (seconds, median over them)."""
    stop, started = threading.Event(), threading.Semaphore(0)
    stamps: list[list[float]] = [[] for _ in running]

    def read(i):
        for n, _ in enumerate(engine.frames(running[i].prompt, running[i].sampling, running[i].seed)):
            stamps[i].append(time.perf_counter())
            if n == 0:
                started.release()
            if stop.is_set():
                return

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(running))]
    for t in threads:
        t.start()
    for _ in running:  # every runner stepping (none of them still prefilling)
        started.acquire()
    time.sleep(0.05)
    try:
        start = time.perf_counter()
        first = _first_frame(engine, joiner)
        width = engine.in_use
        return first, width, statistics.median(_longest_wait(s, start, start + first) for s in stamps)
    finally:
        stop.set()
        for t in threads:
            t.join()
        while engine.in_use:  # the runners leave at the next step: the next figure starts idle
            time.sleep(0.002)


def batch_benchmark(tts, sizes: list[int], frames: int = 24, rounds: int = 2, speaker: str | None = None) -> dict:
    """Figures per batch size (see the module's docstring), medians over `rounds`."""
    if not sizes or min(sizes) < 1:
        raise ValueError("--batch sizes must be at least 1")
    engine = BatchEngine(tts.model.talker, max_batch=max(sizes))
    prepared = _prepared(tts, max(sizes), frames, speaker)
    for size in sizes:  # warm-up: each size's compiled frame is traced here
        _together(engine, prepared[:size])
    raw: dict[str, list] = {"solo_ms_per_frame": []}
    for size in sizes:
        raw[f"{size}"] = []
    joins: dict[str, list] = {"idle": [], "full": [], "prefill": [], "width": [], "solo": [], "stall": []}
    # The joining figures' runners step until the join is timed, whatever --batch-frames is.
    runners = _prepared(tts, max(max(sizes) - 1, 1), JOIN_RUNNER_FRAMES, speaker)
    for round_ in range(rounds):
        solo_ms, solo_first = _solo(tts, prepared[0])
        raw["solo_ms_per_frame"].append(solo_ms)
        joins["solo"].append(solo_first)
        for size in sizes:
            raw[f"{size}"].append(_together(engine, prepared[:size]))
        # Whichever of the two goes second finds the allocator warm: the rounds alternate.
        if round_ % 2:
            joins["prefill"].append(_prefill_alone(engine, prepared[0]))
            joins["idle"].append(_first_frame(engine, prepared[0]))
        else:
            joins["idle"].append(_first_frame(engine, prepared[0]))
            joins["prefill"].append(_prefill_alone(engine, prepared[0]))
        first, width, stall = _join_full(engine, runners, prepared[0])
        joins["full"].append(first)
        joins["width"].append(width)
        joins["stall"].append(stall)
    out = {"solo_ms_per_frame": statistics.median(raw["solo_ms_per_frame"]), "sizes": {},
           "speaker": _speaker(tts, speaker), "texts": [TEXTS[i % len(TEXTS)] for i in range(max(sizes))]}
    for size in sizes:
        fps = statistics.median(r["frames_per_s"] for r in raw[f"{size}"])
        ms = statistics.median(r["ms_per_frame"] for r in raw[f"{size}"])
        out["sizes"][size] = {"frames_per_s": fps, "ms_per_frame": ms}
    base = out["sizes"][sizes[0]]["frames_per_s"]
    for size in sizes:
        out["sizes"][size]["speedup"] = out["sizes"][size]["frames_per_s"] / base
    out["first_frame_idle_s"] = statistics.median(joins["idle"])
    out["first_frame_full_s"] = statistics.median(joins["full"])
    out["prefill_s"] = statistics.median(joins["prefill"])
    out["first_frame_solo_s"] = statistics.median(joins["solo"])
    out["streams_at_join"] = min(joins["width"])  # the joiner included, when its first frame came
    out["runners_longest_wait_s"] = statistics.median(joins["stall"])
    out["engine_steps"] = engine.steps
    return out


def format_batch(title: str, result: dict) -> str:
    sizes = result["sizes"]
    lines = [title, f"{'batch':>5} {'frames/s':>9} {'x batch ' + str(next(iter(sizes))):>10} {'ms/frame/stream':>16}"]
    for size, r in sizes.items():
        lines.append(f"{size:>5} {r['frames_per_s']:9.2f} {r['speedup']:10.2f} {r['ms_per_frame']:16.1f}")
    lines.append(f"single-stream loop (no engine): {result['solo_ms_per_frame']:.1f} ms/frame; engine at batch 1 "
                 f"is {sizes.get(1, {}).get('ms_per_frame', float('nan')) / result['solo_ms_per_frame']:.2f}x that")
    one_ms, full_ms = sizes[min(sizes)]["ms_per_frame"], sizes[max(sizes)]["ms_per_frame"]
    prefill = result["prefill_s"] * 1e3
    lines.append(f"first frame, joining an idle engine: {result['first_frame_idle_s'] * 1e3:.0f} ms "
                 f"(its prefill alone {prefill:.0f} ms, with one step {prefill + one_ms:.0f} ms; the single-stream "
                 f"loop's first frame {result['first_frame_solo_s'] * 1e3:.0f} ms)")
    lines.append(f"first frame, joining {max(max(sizes) - 1, 1)} running streams: {result['first_frame_full_s'] * 1e3:.0f} ms "
                 f"(its prefill alone with two steps of the full batch: {prefill + 2 * full_ms:.0f} ms; "
                 f"{result['streams_at_join']} streams stepping at its first frame)")
    lines.append(f"the running streams' longest wait for a frame meanwhile: {result['runners_longest_wait_s'] * 1e3:.0f} ms "
                 f"(a step of {max(sizes)}: {full_ms:.0f} ms)")
    return "\n".join(lines)


def format_versus(title: str, ours: dict, peer: dict) -> str:
    """Ours against a peer's batch, size by size: the loop's aggregate frames/s (decode apart)."""
    sizes = list(ours["sizes"])
    first = sizes[0]
    lines = [title, f"{'batch':>5} {'ours frames/s':>14} {'x':>6} {'peer frames/s':>14} {'x':>6} "
                    f"{'peer ms/step':>13} {'ours/peer':>10}"]
    for size in sizes:
        mine, theirs = ours["sizes"][size]["frames_per_s"], peer[size]["frames_per_s"]
        lines.append(f"{size:>5} {mine:14.2f} {mine / ours['sizes'][first]['frames_per_s']:6.2f} {theirs:14.2f} "
                     f"{theirs / peer[first]['frames_per_s']:6.2f} {peer[size]['ms_per_step']:13.1f} "
                     f"{mine / theirs:10.2f}")
    return "\n".join(lines)
