"""Audio results: a whole clip (`Audio`) and a streamed piece of one (`AudioChunk`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .weights import atomic_write

SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 1920


@dataclass
class AudioChunk:
    """A piece of streamed speech: `samples` continue the previous chunk exactly."""

    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    index: int
    is_last: bool
    frames: int  # codec frames generated so far, this chunk included
    elapsed: float  # seconds since the request started
    finish_reason: str | None = None  # on the last chunk: "eos", "max_new_tokens", or a guard's

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass
class Audio:
    """A finished clip with its codes and how long it took to make."""

    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    codes: np.ndarray  # (frames, 16) int32
    seconds: float = 0.0  # compute time
    finish_reason: str = "eos"  # "eos" | "max_new_tokens" | "budget" | "repetition" | "silence"
    extra: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (below 1 is faster than real time)."""
        return self.seconds / self.duration if self.duration else float("inf")

    def save(self, path: str | os.PathLike) -> Path:
        """Writes WAV, FLAC or OGG (by extension) atomically: a failed write leaves nothing behind."""
        return write_audio(path, self.samples, self.sample_rate)


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Writes a mono clip through a temporary file in the same folder, then renames it."""
    import soundfile as sf

    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path.name!r}: use a .wav, .flac or .ogg file name")
    with atomic_write(path) as tmp:
        sf.write(str(tmp), np.asarray(samples, dtype=np.float32), sample_rate, format=fmt)
    return path
