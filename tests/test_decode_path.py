"""An observer never changes the audio: `generate()` decodes through the one streaming path with
or without `on_chunk` or `trim_silence`, over a run longer than the offline decode's 300-frame
window; the reference's windowed decode runs only when asked for by name."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from serving import speaking_checkpoint

TEXT = "hello world"
LONG = dict(speaker="vivian", seed=3, max_new_tokens=340, guards=False)  # 339 frames


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    """A tiny model whose audio depends on its codes and that never draws EOS: every run is long."""
    folder = speaking_checkpoint(tmp_path_factory.mktemp("long") / "cv")
    weights = mx.load(str(folder / "model.safetensors"))
    head = np.random.default_rng(0).normal(size=weights["talker.codec_head.weight"].shape).astype(np.float32) * 5
    head[2048:] = 0  # EOS (and every other control row) loses to the audio rows
    weights["talker.codec_head.weight"] = mx.array(head)
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    return mlx_qwen3tts.load(folder)


@pytest.fixture(scope="module")
def plain(tts):
    return tts.generate(TEXT, **LONG)


def test_the_run_is_longer_than_the_offline_window(plain):
    assert len(plain.codes) == 339 and plain.finish_reason == "max_new_tokens"
    assert len(plain.samples) == 1920 * 339 and plain.samples.std() > 0


def test_on_chunk_sees_the_audio_and_changes_none_of_it(tts, plain):
    seen = []
    watched = tts.generate(TEXT, **LONG, on_chunk=seen.append)
    np.testing.assert_array_equal(watched.codes, plain.codes)
    np.testing.assert_array_equal(watched.samples, plain.samples)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in seen]), plain.samples)


def test_generate_is_the_stream_drained(tts, plain):
    streamed = np.concatenate([c.samples for c in tts.stream(TEXT, **LONG)])
    np.testing.assert_array_equal(streamed, plain.samples)


def test_trim_silence_only_trims(tts, plain):
    trimmed = tts.generate(TEXT, **LONG, trim_silence=True)
    np.testing.assert_array_equal(trimmed.codes, plain.codes)
    # The same decode, then the trimming stage: what stream(trim_silence=True) gives.
    streamed = np.concatenate([c.samples for c in tts.stream(TEXT, **LONG, trim_silence=True)])
    np.testing.assert_array_equal(trimmed.samples, streamed)
    assert 0 < len(trimmed.samples) <= len(plain.samples)


def test_the_reference_decode_only_by_name(tts, plain):
    reference = tts.generate(TEXT, **LONG, decode="reference")
    np.testing.assert_array_equal(reference.codes, plain.codes)
    np.testing.assert_allclose(reference.samples, tts.decode(plain.codes), atol=1e-6)
    np.testing.assert_allclose(plain.samples, tts.decode(plain.codes, full_causal=True), atol=1e-5)
    # Another computation past 300 frames (the tiny codec's short reach keeps it close).
    cut = 300 * 1920
    assert not np.array_equal(reference.samples[cut:], plain.samples[cut:])
    np.testing.assert_allclose(reference.samples, plain.samples, atol=1e-5)


def test_the_reference_decode_takes_no_observer(tts):
    with pytest.raises(ValueError, match="on_chunk needs decode='stream'"):
        tts.generate(TEXT, **LONG, decode="reference", on_chunk=print)
    with pytest.raises(ValueError, match="decode='reference' is for generate"):
        tts.stream(TEXT, **LONG, decode="reference")
