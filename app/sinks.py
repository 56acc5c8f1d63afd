"""Feeds streamed speech, stream after stream, into sinks such as the player and a recorder."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mlx_qwen3tts import SAMPLE_RATE

if TYPE_CHECKING:
    from mlx_qwen3tts.audio import AudioChunk


class Sink(Protocol):
    def write(self, samples: np.ndarray) -> None: ...

    def finish(self) -> None: ...


class Recorder:
    """Keeps every sample in memory and writes them as one file at the end."""

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self.sample_rate = sample_rate
        self._parts: list[np.ndarray] = []

    def write(self, samples: np.ndarray) -> None:
        # A copy: a producer may reuse its array for the next chunk.
        self._parts.append(np.array(samples, dtype=np.float32).reshape(-1))

    def finish(self) -> None:
        pass

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes WAV/FLAC/OGG atomically (see `mlx_qwen3tts.audio.write_audio`)."""
        from mlx_qwen3tts.audio import write_audio

        return write_audio(path, self.samples, self.sample_rate)


@dataclass
class Progress:
    """Running totals of one `feed()` call."""

    started: float = field(default_factory=time.perf_counter)
    first_chunk: float | None = None  # seconds from start to the first chunk
    chunks: int = 0
    streams: int = 0  # streams played to their end
    samples: int = 0
    sample_rate: int = SAMPLE_RATE
    elapsed: float = 0.0
    stopped: bool = False  # ended early by the `stop` event

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.sample_rate

    @property
    def rtf(self) -> float:
        """Compute seconds per second of audio (below 1 is faster than real time)."""
        return self.elapsed / self.audio_seconds if self.samples else float("inf")


def feed(
    streams: Iterable[Iterable[AudioChunk]],
    sinks: Sequence[Sink],
    *,
    on_chunk: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Writes every chunk of every stream to every sink, in order, then finishes the sinks.

    `streams` is consumed lazily, so with a generator of `tts.stream(...)` calls the next stream
    is generated while the sinks (a player) are still busy with the previous one.

    Args:
        streams: chunk iterators, played one after another.
        sinks: objects with `write(samples)` and `finish()`.
        on_chunk: called after each chunk has been written.
        stop: when set (from another thread), generation stops after the current chunk.

    Returns:
        The totals. When stopped, or if an exception (such as KeyboardInterrupt) escapes, the
        current stream is closed, which stops its generation, and the sinks are left unfinished.
    """
    progress = Progress()
    for stream in streams:
        try:
            for chunk in stream:
                if stop is not None and stop.is_set():
                    break
                for sink in sinks:
                    sink.write(chunk.samples)
                now = time.perf_counter()
                if progress.first_chunk is None:
                    progress.first_chunk = now - progress.started
                progress.sample_rate = chunk.sample_rate
                progress.chunks += 1
                progress.samples += len(chunk.samples)
                progress.elapsed = now - progress.started
                if on_chunk is not None:
                    on_chunk(progress)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if stop is not None and stop.is_set():
            progress.stopped = True
            return progress
        progress.streams += 1
    for sink in sinks:
        sink.finish()
    progress.elapsed = time.perf_counter() - progress.started
    return progress
