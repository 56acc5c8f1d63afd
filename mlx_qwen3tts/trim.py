"""Cutting a chunk stream's audio: a fault's frames out of a whole clip (`cut_faults`), and the
quiet the model leaves at the end of each utterance (`trim_silence`). Both are stages in the
manner of pipeline.py: generators over chunks that build new chunks and close their source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from .audio import SAMPLE_RATE, SAMPLES_PER_FRAME, AudioChunk
from .pipeline import close_source

WINDOW = SAMPLE_RATE // 50  # 20 ms; divides a frame, so windows stay on one grid across chunks
KEEP = SAMPLE_RATE // 5  # silence kept after the last sound: a natural pause


def cut_faults(chunks: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
    """Holds each segment's chunks until it ends, then drops the audio of its fault's frames."""
    held: list[AudioChunk] = []
    try:
        for chunk in chunks:
            held.append(chunk)
            if not (chunk.segment_end or chunk.is_last):
                continue
            cut = chunk.bad_frames * SAMPLES_PER_FRAME
            for i in reversed(range(len(held))):
                if cut <= 0:
                    break
                keep = max(0, len(held[i].samples) - cut)
                cut -= len(held[i].samples) - keep
                held[i] = replace(held[i], samples=held[i].samples[:keep])
            yield from held
            held = []
    finally:
        close_source(chunks)


def loud_end(samples: np.ndarray, rms: float) -> int:
    """The index just past the last 20 ms window at or above `rms` (0 if none)."""
    n = len(samples) // WINDOW
    energy = np.sqrt(np.mean(np.square(samples[: n * WINDOW].reshape(n, WINDOW)), axis=1))
    loud = np.flatnonzero(energy >= rms)
    if len(samples) > n * WINDOW and np.sqrt(np.mean(np.square(samples[n * WINDOW:]))) >= rms:
        return len(samples)
    return int(loud[-1] + 1) * WINDOW if len(loud) else 0


def trim_silence(chunks: Iterator[AudioChunk], rms: float) -> Iterator[AudioChunk]:
    """Holds back quiet audio until something audible follows; where an utterance ends, keeps
    only a short pause of it. The result does not depend on the chunk sizes."""
    held = np.zeros(0, np.float32)  # trailing quiet audio not yet known to be a pause
    index = 0
    try:
        for chunk in chunks:
            audio = np.concatenate([held, chunk.samples])
            end = loud_end(audio, rms)
            if chunk.end_of_utterance:
                end = min(len(audio), end + KEEP)
            samples, held = audio[:end], audio[end:]
            if chunk.end_of_utterance:
                held = np.zeros(0, np.float32)
            if not len(samples) and not (chunk.end_of_utterance or chunk.is_last):
                continue
            yield replace(chunk, samples=samples, index=index)
            index += 1
    finally:
        close_source(chunks)
