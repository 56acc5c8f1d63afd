"""Live text against whole text, side by side: time to first audio and the streamed frame rate.

Four ways to speak the same words, each timed from the moment its text (or its first piece) is
handed over: the whole text and the text arriving word by word (as fast as the loop takes it,
so any difference is the cost of waiting for text), each in the streaming-text layout (the
talker starts after the first token) and the whole-text layout (the text sits in the prompt).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator

from ..audio import SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

CASES = {  # name -> (live pieces?, non_streaming_mode)
    "whole text, streaming layout": (False, False),
    "live text, streaming layout": (True, False),
    "whole text, whole-text layout": (False, True),
    "live text, whole-text layout": (True, True),
}


def words(text: str) -> Iterator[str]:
    """The text word by word, as an LLM would write it."""
    parts = text.split(" ")
    yield from (p + " " for p in parts[:-1])
    yield parts[-1]


def one_run(tts, text: str, live: bool, kwargs: dict) -> dict:
    """First audio and the steady frame rate of one stream (decode included, as a listener gets it)."""
    start = time.perf_counter()
    stamps, frames = [], []
    for chunk in tts.stream(words(text) if live else text, **kwargs):
        if len(chunk.samples):
            stamps.append(time.perf_counter())
            frames.append(chunk.frames)
    first = stamps[0] - start if stamps else float("nan")
    # After the first chunk: frames made per second of wall time, as ms per frame.
    steady = (stamps[-1] - stamps[0]) / (frames[-1] - frames[0]) * 1e3 if len(stamps) > 1 else float("nan")
    return {"first_audio_s": first, "ms_per_frame": steady, "frames": frames[-1] if frames else 0,
            "audio_seconds": (frames[-1] if frames else 0) * SAMPLES_PER_FRAME / tts.sample_rate}


def live_benchmark(tts, text: str, kwargs: dict, runs: int = 3) -> dict[str, dict]:
    """The median of `runs` runs of each case, the cases interleaved so that a noisy moment of
    the machine falls on all of them alike."""
    one_run(tts, text, True, {**kwargs, "max_new_tokens": 3, "non_streaming_mode": False})  # warm-up
    results: dict[str, list[dict]] = {name: [] for name in CASES}
    for i in range(runs):
        for name, (live, whole_layout) in CASES.items():
            results[name].append(one_run(tts, text, live, {**kwargs, "non_streaming_mode": whole_layout}))
            logger.info("run %d/%d, %s: first audio %.3f s", i + 1, runs, name, results[name][-1]["first_audio_s"])
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}


def format_live(title: str, table: dict[str, dict]) -> str:
    rows = [("first audio (s)", "first_audio_s", "{:.3f}"), ("streamed ms/frame", "ms_per_frame", "{:.1f}"),
            ("frames", "frames", "{:.0f}")]
    width = max(map(len, table))
    lines = [title, "-" * len(title), f"{'':<{width}}  " + "  ".join(f"{h:>17}" for h, _, _ in rows)]
    for name, r in table.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{fmt.format(r[k]):>17}" for _, k, fmt in rows))
    return "\n".join(lines)
