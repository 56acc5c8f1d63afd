"""Frames to audio as they arrive: the codec decoder stepped chunk by chunk."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, AudioChunk

DEFAULT_CHUNK_FRAMES = (1, 2, 4, 8)


def chunk_schedule(chunk_frames: int | tuple[int, ...] | list[int]) -> Iterator[int]:
    """Frames per chunk: the ramp as given, then its last size for ever."""
    sizes = (chunk_frames,) if isinstance(chunk_frames, int) else tuple(chunk_frames)
    if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"chunk_frames must be positive frame counts, got {chunk_frames!r}")
    yield from sizes
    while True:
        yield sizes[-1]


def stream_audio(decoder, frames: Iterable[tuple[mx.array, bool]],
                 chunk_frames: int | tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
                 started: float | None = None, prime: np.ndarray | None = None) -> Iterator[AudioChunk]:
    """Decodes `(frame, is_last)` pairs into `AudioChunk`s as soon as each chunk is full.

    `prime` (frames, 16) codes are run through the decoder first and their audio dropped,
    giving the stream its left context. The decoder's streaming state is reset before and
    after, also when the consumer stops early, so an abandoned stream leaves nothing behind.
    """
    started = time.perf_counter() if started is None else started
    sizes = chunk_schedule(chunk_frames)
    want, pending, total, index = next(sizes), [], 0, 0
    decoder.reset_state()
    try:
        if prime is not None and len(prime):
            mx.eval(decoder.step(mx.array(np.asarray(prime, np.int32))[None]))
        for frame, is_last in frames:
            pending.append(frame)
            total += 1
            if len(pending) < want and not is_last:
                continue
            wav = decoder.step(mx.stack(pending)[None])
            samples = np.asarray(wav[0], dtype=np.float32)
            yield AudioChunk(samples, SAMPLE_RATE, index, is_last, total, time.perf_counter() - started)
            pending, index, want = [], index + 1, next(sizes)
            if is_last:
                return
    finally:
        decoder.reset_state()
        if hasattr(frames, "close"):
            frames.close()
