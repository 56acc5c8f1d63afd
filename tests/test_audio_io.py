"""Reference-audio loading: formats, channels, resampling and the errors users will meet."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mlx_qwen3tts.audio import Audio
from mlx_qwen3tts.audio_io import AudioLoadError, check_duration, load_audio, resample, to_mono
from reference import librosa_load, librosa_resample, requires_reference, write_speechlike_wav


def _tone(n: int, sr: int = 24000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / sr)).astype(np.float32)


def test_mono_24k_file_round_trips_exactly(tmp_path):
    wav = _tone(24000)
    sf.write(tmp_path / "a.wav", wav, 24000, subtype="FLOAT")
    out = load_audio(tmp_path / "a.wav")
    assert out.dtype == np.float32 and out.ndim == 1
    np.testing.assert_array_equal(out, wav)


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_other_formats(tmp_path, ext):
    sf.write(tmp_path / f"a.{ext}", _tone(16000, 16000), 16000)
    out = load_audio(str(tmp_path / f"a.{ext}"))
    assert out.shape == (24000,) and out.dtype == np.float32
    assert 0.3 < np.abs(out).max() < 0.7


def test_stereo_file_is_down_mixed_by_mean(tmp_path):
    left, right = _tone(24000), 0.25 * _tone(24000)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 24000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-7)


def test_array_channel_layouts_agree():
    stereo = np.stack([_tone(4800), -0.5 * _tone(4800)], 1)  # (N, C)
    a = load_audio(stereo, 24000)
    b = load_audio(stereo.T.copy(), 24000)  # (C, N)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, 0.25 * _tone(4800), atol=1e-7)
    assert to_mono(stereo[:, :1]).shape == (4800,)


def test_ambiguous_channel_axis_is_refused():
    with pytest.raises(ValueError, match="channel axis"):
        to_mono(np.ones((100, 100), np.float32))


def test_int16_array_is_scaled():
    out = load_audio((_tone(2400) * 32767).astype(np.int16), 24000)
    np.testing.assert_allclose(out, _tone(2400), atol=1e-4)


def test_audio_object_and_resampled_length():
    clip = Audio(samples=_tone(48000, 48000), sample_rate=48000, codes=np.zeros((0, 16), np.int32))
    out = load_audio(clip)
    assert out.shape == (24000,)
    with pytest.raises(ValueError, match="disagrees"):
        load_audio(clip, 16000)


@requires_reference
def test_resample_matches_librosa_default(tmp_path):
    path = write_speechlike_wav(tmp_path / "ref.wav", 2.37)
    ours = load_audio(path)
    theirs = librosa_load(path, 24000)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-5
    odd = np.random.default_rng(1).standard_normal(44100).astype(np.float32)
    for sr in (16000, 44100):
        assert resample(odd, sr).shape == librosa_resample(odd, sr, 24000).shape


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioLoadError, match="bad.wav"):
        load_audio(bad)


def test_empty_and_silent(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0,), np.float32), 24000)
    with pytest.raises(AudioLoadError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioLoadError, match="silent"):
        load_audio(np.zeros(24000, np.float32), 24000)
    with pytest.raises(AudioLoadError, match="NaN"):
        load_audio(np.full(10, np.nan, np.float32), 24000)


def test_array_without_rate():
    with pytest.raises(ValueError, match="sample rate"):
        load_audio(_tone(100))
    with pytest.raises(TypeError):
        load_audio(12345)


def test_check_duration():
    assert check_duration(np.zeros(36000)) == pytest.approx(1.5)
    with pytest.raises(AudioLoadError, match="at least 1 s"):
        check_duration(np.zeros(23999))
    with pytest.raises(AudioLoadError, match="at most 60 s"):
        check_duration(np.zeros(61 * 16000), 16000)


def test_8bit_48khz_stereo_reference_is_mixed_and_resampled(tmp_path):
    import soundfile as sf

    t = np.arange(48000 * 2) / 48000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], 1)
    path = tmp_path / "u8.wav"
    sf.write(path, stereo, 48000, subtype="PCM_U8")
    mono = load_audio(path)
    assert mono.dtype == np.float32 and len(mono) == 48000  # 2 s at 24 kHz
    assert 0.2 < np.abs(mono).max() <= 1.0
