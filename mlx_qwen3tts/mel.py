"""Log-mel features for the speaker encoder (24 kHz input, 128 Slaney mel bins up to 12 kHz)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 24000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 12000.0
    power_eps: float = 1e-9  # added to |X|^2 before the square root
    log_floor: float = 1e-5


# Slaney's mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


@lru_cache(maxsize=8)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular Slaney-normalized filters, `(n_mels, n_fft // 2 + 1)` float32."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    # ramps[i, k] = edges[i] - fft_hz[k]; each filter rises over one gap and falls over the next
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # area normalization: every filter integrates to the same value over Hz
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (the DFT-even one)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def mel_spectrogram(wav: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """`(..., samples)` at `config.sample_rate` -> log-mel `(..., frames, n_mels)` float32.

    The signal is reflect-padded by `(n_fft - hop) / 2` on both sides and framed without
    centering, so `frames = samples // hop`.
    """
    wav = np.asarray(wav, dtype=np.float64)
    pad = (config.n_fft - config.hop_length) // 2
    if wav.shape[-1] <= pad:
        raise ValueError(f"audio too short for mel features: {wav.shape[-1]} samples, need > {pad}")
    widths = [(0, 0)] * (wav.ndim - 1) + [(pad, pad)]
    padded = np.pad(wav, widths, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft, axis=-1)
    frames = frames[..., :: config.hop_length, :] * _hann(config.n_fft)
    spec = np.fft.rfft(frames, axis=-1)
    magnitude = np.sqrt(spec.real**2 + spec.imag**2 + config.power_eps)
    basis = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    mel = magnitude @ basis.T.astype(np.float64)
    return np.log(np.maximum(mel, config.log_floor)).astype(np.float32)
