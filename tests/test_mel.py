"""Mel front end of the speaker encoder: filterbank and features against librosa and the reference."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_qwen3tts.audio_io import load_audio
from mlx_qwen3tts.mel import MelConfig, hz_to_mel, mel_filterbank, mel_spectrogram, mel_to_hz
from reference import librosa_mel_filters, reference_mel, requires_reference, write_speechlike_wav


def test_mel_scale_round_trip_and_knee():
    hz = np.array([0.0, 500.0, 1000.0, 4000.0, 12000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    assert hz_to_mel(1000.0) == pytest.approx(15.0)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmax", [(24000, 1024, 128, 12000.0), (16000, 512, 40, None)])
@requires_reference
def test_filterbank_matches_librosa(sr, n_fft, n_mels, fmax):
    ours = mel_filterbank(sr, n_fft, n_mels, 0.0, fmax)
    theirs = librosa_mel_filters(sr, n_fft, n_mels, 0.0, fmax)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max()


def test_frame_count_and_shape():
    wav = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 24000 + 100)).astype(np.float32)
    mel = mel_spectrogram(wav)
    assert mel.shape == (2, (24000 + 100) // 256, 128) and mel.dtype == np.float32
    np.testing.assert_allclose(mel[1], mel_spectrogram(wav[1]), atol=1e-6)
    with pytest.raises(ValueError, match="too short"):
        mel_spectrogram(np.ones(300, np.float32))


def test_log_floor_on_silence():
    mel = mel_spectrogram(np.zeros(4096, np.float32))
    assert np.all(mel >= np.log(MelConfig().log_floor) - 1e-6)


@requires_reference
@pytest.mark.parametrize("seconds", [1.0, 2.37])
def test_matches_reference_mel_full_band(tmp_path, seconds):
    wav = load_audio(write_speechlike_wav(tmp_path / "ref.wav", seconds, sample_rate=24000))
    theirs, ours = reference_mel(wav), mel_spectrogram(wav)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-4


@requires_reference
def test_matches_reference_mel_resampled(tmp_path):
    wav = load_audio(write_speechlike_wav(tmp_path / "ref.wav", 2.37, sample_rate=22050))
    theirs, ours = reference_mel(wav), mel_spectrogram(wav)
    assert ours.shape == theirs.shape
    # Mel bins above the source's 11.025 kHz Nyquist hold only the resampler's stop-band
    # residue, where the reference's float32 FFT rounding is a visible share of the value.
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(12000.0), 130))
    in_band = edges[2:] <= 22050 / 2
    assert np.abs(ours - theirs)[:, in_band].max() <= 1e-4
    assert np.abs(ours - theirs).max() <= 1e-3
