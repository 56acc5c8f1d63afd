"""Reference-audio loading for voice cloning: any file or array -> float32 mono at 24 kHz.

Channel layout of arrays: soundfile's `(samples, channels)` is the native layout; the
`(channels, samples)` layout of librosa and torch is accepted too when the channel axis is
obvious (the shorter axis, at most `MAX_CHANNELS` long). Channels are down-mixed by their mean.
Resampling uses soxr at high quality, which is what `librosa.resample` does by default, and
the result has librosa's length, `ceil(n * target_sr / sr)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE

TARGET_SAMPLE_RATE = SAMPLE_RATE
MAX_CHANNELS = 8
MIN_SECONDS = 1.0
MAX_SECONDS = 60.0


class AudioLoadError(ValueError):
    """The audio could not be read or is not usable as a voice reference."""


def load_audio(
    source: Any,
    sample_rate: int | None = None,
    *,
    target_sr: int = TARGET_SAMPLE_RATE,
) -> np.ndarray:
    """Loads `source` as a float32 mono waveform at `target_sr`.

    Args:
        source: a path (anything soundfile reads: WAV, FLAC, OGG, ...), a numpy array (then
            `sample_rate` is required), or an object with `.samples` and `.sample_rate`.
        sample_rate: the rate of an array source; for other sources it must be None or agree.
        target_sr: the rate of the result.
    """
    if isinstance(source, (str, os.PathLike)):
        samples, rate = _read_file(Path(source), sample_rate)
        name = str(source)
    elif hasattr(source, "samples") and hasattr(source, "sample_rate"):
        rate = int(source.sample_rate)
        if sample_rate is not None and int(sample_rate) != rate:
            raise ValueError(f"sample_rate={sample_rate} disagrees with the audio's own rate {rate}")
        samples, name = np.asarray(source.samples), type(source).__name__
    elif isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        if sample_rate is None:
            raise ValueError("an audio array needs its sample rate: load_audio(array, sample_rate)")
        samples, rate, name = np.asarray(source), int(sample_rate), "array"
    else:
        raise TypeError(f"cannot load audio from {type(source).__name__}: pass a path, an array or an Audio")
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    mono = _check_signal(to_mono(_to_float(samples)), name)
    return resample(mono, rate, target_sr)


def _read_file(path: Path, sample_rate: int | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected an audio file, got a folder: {path}")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt or unknown formats
        raise AudioLoadError(f"cannot read audio file {path}: {e}") from e
    if sample_rate is not None and int(sample_rate) != rate:
        raise ValueError(f"sample_rate={sample_rate} disagrees with {path.name}'s own rate {rate}")
    return samples, int(rate)


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM is scaled to [-1, 1); floats are kept as they are."""
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        scale = float(-int(info.min)) if info.min < 0 else float(info.max + 1) / 2
        offset = 0.0 if info.min < 0 else scale
        return ((samples.astype(np.float64) - offset) / scale).astype(np.float32)
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"audio samples must be numbers, got dtype {samples.dtype}")
    return samples.astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Down-mixes `(N,)`, `(N, C)` or `(C, N)` to `(N,)` by the mean over channels."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"audio must be 1-D or 2-D, got shape {samples.shape}")
    rows, cols = samples.shape
    if 0 in samples.shape:
        return samples.reshape(-1)
    if cols <= MAX_CHANNELS and rows >= cols:
        return samples.mean(axis=1, dtype=np.float32)
    if rows <= MAX_CHANNELS and cols > rows:
        return samples.mean(axis=0, dtype=np.float32)
    raise ValueError(
        f"cannot tell the channel axis of audio with shape {samples.shape}: "
        f"pass (samples, channels) with at most {MAX_CHANNELS} channels"
    )


def _check_signal(mono: np.ndarray, name: str) -> np.ndarray:
    if mono.size == 0:
        raise AudioLoadError(f"audio {name} is empty")
    if not np.isfinite(mono).all():
        raise AudioLoadError(f"audio {name} contains NaN or infinite samples")
    if not np.any(mono):
        raise AudioLoadError(f"audio {name} is silent (all samples are zero)")
    return mono


def resample(samples: np.ndarray, sample_rate: int, target_sr: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """soxr high quality, cut or zero-padded to `ceil(n * target_sr / sample_rate)` samples."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if sample_rate == target_sr:
        return samples
    import soxr

    out = soxr.resample(samples, sample_rate, target_sr, quality="HQ")
    n = int(np.ceil(samples.shape[-1] * (float(target_sr) / sample_rate)))
    if out.shape[-1] < n:
        out = np.pad(out, (0, n - out.shape[-1]))
    return np.ascontiguousarray(out[:n], dtype=np.float32)


def check_duration(
    samples: np.ndarray,
    sample_rate: int = TARGET_SAMPLE_RATE,
    *,
    min_seconds: float = MIN_SECONDS,
    max_seconds: float = MAX_SECONDS,
) -> float:
    """Returns the duration in seconds, or raises if it is outside [min_seconds, max_seconds]."""
    seconds = len(samples) / sample_rate
    if seconds < min_seconds:
        raise AudioLoadError(
            f"reference audio is {seconds:.2f} s long; at least {min_seconds:g} s is needed"
        )
    if seconds > max_seconds:
        raise AudioLoadError(
            f"reference audio is {seconds:.2f} s long; at most {max_seconds:g} s is allowed (trim it)"
        )
    return seconds
