"""Codec decode for concurrent streams, two ways side by side: interleaved (each stream steps a
decoder of its own, one after another, as the streams do today) and batched (one decoder steps
all the streams' chunks as one batch). Both stream in the same chunks from a reset state, so
they do the same arithmetic; what differs is how many calls, and how wide each one is.
"""

from __future__ import annotations

import statistics
import time

import mlx.core as mx
import numpy as np

from ..decoder_pool import DecoderPool


def _interleaved(pool: DecoderPool, codes: np.ndarray, chunk: int) -> float:
    decoders = [pool.take() for _ in range(len(codes))]
    try:
        start = time.perf_counter()
        for i in range(0, codes.shape[1], chunk):
            for row, decoder in enumerate(decoders):
                np.asarray(decoder.step(mx.array(codes[row:row + 1, i:i + chunk])))
        return time.perf_counter() - start
    finally:
        for decoder in decoders:
            pool.give(decoder)


def _batched(pool: DecoderPool, codes: np.ndarray, chunk: int) -> float:
    decoder = pool.take()
    try:
        start = time.perf_counter()
        for i in range(0, codes.shape[1], chunk):
            np.asarray(decoder.step(mx.array(codes[:, i:i + chunk])))
        return time.perf_counter() - start
    finally:
        pool.give(decoder)


def decode_benchmark(speech_decoder, sizes: list[int], frames: int = 16, chunk: int = 4, rounds: int = 3) -> dict:
    """Per batch size, ms per stream-frame interleaved and batched (medians over `rounds`, the
    two ways alternating within a round so they see the same load)."""
    pool = DecoderPool(speech_decoder)
    rng = np.random.default_rng(0)
    size = speech_decoder.config.codebook_size
    codes = rng.integers(0, size, (max(sizes), frames, 16)).astype(np.int32)
    for n in sizes:  # warm-up: each width's kernels once
        _interleaved(pool, codes[:n, :chunk], chunk)
        _batched(pool, codes[:n, :chunk], chunk)
    out = {}
    for n in sizes:
        timed = {"interleaved": [], "batched": []}
        for _ in range(rounds):
            timed["interleaved"].append(_interleaved(pool, codes[:n], chunk))
            timed["batched"].append(_batched(pool, codes[:n], chunk))
        out[n] = {way: statistics.median(t) / (n * frames) * 1e3 for way, t in timed.items()}
    return out


def format_decode(title: str, result: dict) -> str:
    lines = [title, f"{'streams':>7} {'interleaved ms/frame':>21} {'batched ms/frame':>17} {'batched gain':>13}"]
    for n, r in result.items():
        lines.append(f"{n:>7} {r['interleaved']:21.2f} {r['batched']:17.2f} {r['interleaved'] / r['batched']:12.2f}x")
    return "\n".join(lines)
