"""Audio results: a whole clip (`Audio`) and a streamed piece of one (`AudioChunk`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .weights import atomic_write

SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 1920


@dataclass(frozen=True)
class AudioChunk:
    """A piece of streamed speech: `samples` continue the previous chunk exactly."""

    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    index: int
    is_last: bool  # the stream's last chunk (it may be empty when the input ended after the speech)
    frames: int  # codec frames generated so far, this chunk included
    elapsed: float  # seconds since the request started
    # Where an utterance ends: how ("eos", "max_new_tokens", a guard's reason, or "cancelled").
    finish_reason: str | None = None
    utterance: int = 0  # utterance number (a TextFeed's flush() starts the next)
    end_of_utterance: bool = False
    segment_end: bool = False  # the last chunk of a generation segment
    bad_frames: int = 0  # where a segment ends: how many of its last frames a guard found faulty
    codes: np.ndarray | None = None  # (frames of this chunk, 16) int32

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
    finish_reason: str = "eos"  # "eos" | "max_new_tokens" | "budget" | "repetition" | "silence" | "cancelled"

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

    @classmethod
    def from_chunks(cls, chunks: list[AudioChunk], codes: np.ndarray, seconds: float) -> Audio:
        """A clip from its chunks; its finish reason is the first fault among the utterances'
        (else how the last one ended)."""
        reasons = [c.finish_reason for c in chunks if c.finish_reason]
        faults = [r for r in reasons if r not in ("eos", "max_new_tokens")]
        samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return cls(samples, SAMPLE_RATE, codes, seconds, (faults or reasons or ["eos"])[0 if faults else -1])


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
