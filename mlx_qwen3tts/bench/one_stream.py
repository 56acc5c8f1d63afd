"""One stream's figures on a loaded model: time to first audio, RTF, the frame loop and decode
timed apart, the talker and code-predictor halves, and the kernel floor (`kernel_floor.py`).

Generation is greedy with a fixed token budget, so every run does the same work; a random
model may still draw EOS early, so per-frame figures use the frames actually produced.
"""

from __future__ import annotations

import logging
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..audio import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..generation import HostSyncs
from ..pipeline import DEFAULT_CHUNK_FRAMES
from .kernel_floor import kernel_floor, time_halves
from .reference import median_of

logger = logging.getLogger(__name__)

DEFAULT_TEXT = "Hello there. This is a short benchmark sentence, read out loud at an even pace."
DEFAULT_INSTRUCT = "A calm, clear adult voice."
GROUP_SIZE = 64


def _reset_peak() -> None:
    if hasattr(mx, "reset_peak_memory"):
        mx.reset_peak_memory()


def _peak_mb() -> float | None:
    get = getattr(mx, "get_peak_memory", None)
    return get() / 2**20 if get else None


def quantize(tts, bits: int, group_size: int = GROUP_SIZE) -> int:
    """Quantizes the talker's and code predictor's Linear layers in memory; returns how many.

    Embeddings stay in float; a layer whose input width is not a multiple of `group_size` is skipped.
    """
    count = 0

    def predicate(_, module) -> bool:
        nonlocal count
        ok = isinstance(module, nn.Linear) and module.weight.shape[-1] % group_size == 0
        count += ok
        return ok

    nn.quantize(tts.model.talker, group_size=group_size, bits=bits, class_predicate=predicate)
    mx.eval(tts.model.talker.parameters())
    return count


def _time_frames(tts, text: str, kwargs: dict) -> tuple[np.ndarray, float, float, float | None]:
    """The frame loop as a consumer runs it: (codes, seconds to first frame, steady s/frame,
    host syncs per steady-state frame)."""
    start = time.perf_counter()
    stamps, codes, syncs = [], [], []
    for frame, _ in tts.iter_frames(text, **kwargs):
        codes.append(np.asarray(frame))  # forces the frame, as a consumer would
        stamps.append(time.perf_counter())
        syncs.append(HostSyncs.count)
    if not codes:
        return np.zeros((0, 16), np.int32), time.perf_counter() - start, 0.0, None
    first = stamps[0] - start
    # Steady state excludes the prefill; with a single frame there is nothing else to time.
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else first
    per_frame = (syncs[-1] - syncs[0]) / (len(syncs) - 1) if len(syncs) > 1 else None
    return np.stack(codes), first, steady, per_frame


def _time_decode(decoder, codes: np.ndarray, chunk: int) -> float:
    """Seconds per frame to step the codec decoder through `codes` in streaming-size chunks."""
    if not len(codes):
        return 0.0
    decoder.reset_state()
    try:
        start = time.perf_counter()
        for i in range(0, len(codes), chunk):
            np.asarray(decoder.step(mx.array(codes[i:i + chunk])[None]))
        return (time.perf_counter() - start) / len(codes)
    finally:
        decoder.reset_state()


def run_once(tts, text: str, kwargs: dict) -> dict:
    """One measured run: a whole stream (first chunk, RTF), the frame loop and decode timed apart."""
    _reset_peak()
    start, first_chunk, samples = time.perf_counter(), float("nan"), 0
    for chunk in tts.stream(text, **kwargs):
        if not samples:
            first_chunk = time.perf_counter() - start
        samples += len(chunk.samples)
    streamed = time.perf_counter() - start
    codes, prefill, steady, syncs = _time_frames(tts, text, kwargs)
    decode = _time_decode(tts.speech_decoder, codes, DEFAULT_CHUNK_FRAMES[-1])
    audio = len(codes) * SAMPLES_PER_FRAME / SAMPLE_RATE
    return {
        "frames": len(codes), "audio_seconds": audio, "first_chunk_s": first_chunk,
        "rtf": streamed / audio if audio else None, "prefill_s": prefill,
        "talker_code_predictor_ms": steady * 1e3, "host_syncs_per_frame": syncs,
        "decode_ms": decode * 1e3, "ms_per_frame": (steady + decode) * 1e3, "peak_memory_mb": _peak_mb(),
    }


def request_kwargs(tts, frames: int, speaker: str | None = None, instruct: str | None = None) -> dict:
    """Greedy generation of `frames` frames (a random model may still stop early on EOS)."""
    if tts.kind == "custom_voice":
        speaker = speaker or tts.speakers[0]
    elif tts.kind == "voice_design":
        instruct = instruct or DEFAULT_INSTRUCT
    return {"speaker": speaker, "instruct": instruct, "temperature": 0, "subtalker_temperature": 0,
            "max_new_tokens": frames + 1, "seed": 0}


def benchmark(tts, *, text: str = DEFAULT_TEXT, speaker: str | None = None, instruct: str | None = None,
              frames: int = 50, runs: int = 3, floor_reps: int = 5) -> dict:
    """Warms up, then the median of `runs` runs of `run_once`, the halves and the kernel floor."""
    if frames < 1 or runs < 1:
        raise ValueError("--frames and --runs must be at least 1")
    kwargs = request_kwargs(tts, frames, speaker, instruct)
    logger.info("warming up")
    run_once(tts, text, {**kwargs, "max_new_tokens": min(frames, 2) + 1})
    results = []
    for i in range(runs):
        results.append(run_once(tts, text, kwargs))
        logger.info("run %d/%d: %.1f ms/frame", i + 1, runs, results[-1]["ms_per_frame"])
    median = median_of(results)
    talker, predictor = time_halves(tts, text, kwargs, max(int(median["frames"]), 1))
    # The talker's mean context over the timed frames: the prompt plus half of them.
    context = tts.prepare(text, **kwargs).prompt.prefill.shape[1] + int(median["frames"]) // 2
    floor = kernel_floor(tts.model.talker, floor_reps, context)
    loop = median["talker_code_predictor_ms"]
    median |= {"talker_ms": talker * 1e3, "code_predictor_ms": predictor * 1e3, **floor,
               "floor_ratio": loop / floor["kernel_floor_ms"] if median["frames"] else None}
    return {"median": median, "runs": results, "speaker": kwargs["speaker"], "instruct": kwargs["instruct"]}
