"""Voice cloning against the official implementation: x-vector, reference codes, greedy codes."""

from __future__ import annotations

import numpy as np
import pytest

import mlx_qwen3tts
from reference import build_checkpoint, reference_clone_prompt, requires_reference, run_reference, write_speechlike_wav
from test_parity_core import GREEDY, REF_GREEDY, TEXT

pytestmark = [requires_reference, pytest.mark.parity]
REF_TEXT = "Hello, this is a short reference recording."


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = build_checkpoint("base", "proj", "0b6", seed=2)
    wav = write_speechlike_wav(tmp_path_factory.mktemp("ref") / "ref.wav", seconds=2.3)
    return mlx_qwen3tts.load(path), path, wav, reference_clone_prompt(path, wav, REF_TEXT)


@pytest.fixture(scope="module")
def voice(base):
    tts, _, wav, _ = base
    return tts.clone_voice(wav, REF_TEXT)


def test_voice_matches_reference_prompt(base, voice):
    _, _, _, (ref_codes, x_ref) = base
    np.testing.assert_array_equal(voice.ref_codes, ref_codes)
    assert voice.x_vector.shape == x_ref.shape
    assert np.abs(voice.x_vector - x_ref).max() / np.abs(x_ref).max() <= 1e-4


@pytest.mark.parametrize("non_streaming_mode", [False, True])
def test_in_context_clone_matches_reference(base, voice, non_streaming_mode):
    tts, ref, wav, _ = base
    rec = run_reference(ref, "generate_voice_clone", TEXT, clone={"ref_audio": str(wav), "ref_text": REF_TEXT},
                        language="english", non_streaming_mode=non_streaming_mode, **REF_GREEDY)
    audio = tts.generate(TEXT, voice=voice, language="english", non_streaming_mode=non_streaming_mode,
                         guards=False, decode="reference", **GREEDY)
    request = tts.prepare(TEXT, voice=voice, language="english", non_streaming_mode=non_streaming_mode)
    np.testing.assert_allclose(np.asarray(request.prompt.prefill), rec.prefill, atol=1e-5)
    n_ref = len(voice.ref_codes)
    assert audio.codes.shape[0] >= 30
    np.testing.assert_array_equal(audio.codes, rec.codes[n_ref:])  # the reference decodes ref + generated
    assert audio.samples.shape == rec.wav.shape
    np.testing.assert_allclose(audio.samples, rec.wav, atol=1e-4)


def test_x_vector_only_clone_matches_reference(base):
    tts, ref, wav, _ = base
    voice = tts.clone_voice(wav, x_vector_only=True)
    assert voice.ref_codes is None
    rec = run_reference(ref, "generate_voice_clone", TEXT, language="auto", ref_audio=str(wav), x_vector_only_mode=True,
                        **REF_GREEDY)
    ours = tts.generate_codes(TEXT, voice=voice, language="auto", **GREEDY)
    assert ours.shape[0] >= 30
    np.testing.assert_array_equal(ours, rec.codes)


def test_saved_voice_reproduces_codes(base, voice, tmp_path):
    tts = base[0]
    path = voice.save(tmp_path / "me.voice")
    loaded = mlx_qwen3tts.Voice.load(path)
    assert loaded.ref_text == REF_TEXT and loaded.model_size == "0b6"
    a = tts.generate_codes(TEXT, voice=voice, language="english", max_new_tokens=8, seed=4)
    b = tts.generate_codes(TEXT, voice=path, language="english", max_new_tokens=8, seed=4)
    assert len(a) == 7
    np.testing.assert_array_equal(a, b)


def test_in_context_stream_is_primed_with_the_reference(base, voice):
    tts = base[0]
    args = dict(voice=voice, language="english", **{**GREEDY, "max_new_tokens": 12})
    offline = tts.generate(TEXT, guards=False, decode="reference", **args)  # the reference's decode-then-cut
    streamed = np.concatenate([c.samples for c in tts.stream(TEXT, **args)])
    # Offline decodes ref + generated and cuts the reference's share; streaming starts from the
    # same left context, so both agree wherever the cut falls on a frame boundary.
    assert len(streamed) == 1920 * len(offline.codes)
    tail = min(len(streamed), len(offline.samples))
    np.testing.assert_allclose(streamed[-tail:], offline.samples[-tail:], atol=1e-5)


def test_cloning_errors(base, tmp_path):
    import soundfile as sf

    tts, _, wav, _ = base
    with pytest.raises(ValueError, match="ref_text"):
        tts.clone_voice(wav)
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).normal(size=12000).astype(np.float32) * 0.1, 24000)
    with pytest.raises(ValueError, match="at least 1 s"):
        tts.clone_voice(short, "hi")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(48000, np.float32), 24000)
    with pytest.raises(ValueError, match="silent"):
        tts.clone_voice(silent, "hi")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        tts.clone_voice(tmp_path / "missing.wav", "hi")
    voice = tts.clone_voice(wav, x_vector_only=True)
    with pytest.raises(ValueError, match="not both"):
        tts.generate_codes(TEXT, voice=voice, speaker="vivian")
    with pytest.raises(ValueError, match="clone_voice"):
        tts.generate_codes(TEXT)
    with pytest.raises(ValueError, match="instruct"):
        tts.generate_codes(TEXT, voice=voice, instruct="loud")
    other = mlx_qwen3tts.Voice(np.zeros(2048, np.float32), model_size="1b7")
    with pytest.raises(ValueError, match="made for a 1.7B model"):
        tts.generate_codes(TEXT, voice=other)


def test_long_reference_is_trimmed_with_a_warning(base, tmp_path, caplog):
    tts = base[0]
    long_wav = write_speechlike_wav(tmp_path / "long.wav", seconds=61.0, sample_rate=24000, channels=1)
    with caplog.at_level("WARNING", logger="mlx_qwen3tts"):
        voice = tts.clone_voice(long_wav, x_vector_only=True)
    assert "first 60 s" in caplog.text and voice.x_vector.shape == (64,)
