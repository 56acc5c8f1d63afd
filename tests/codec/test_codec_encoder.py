"""12 Hz codec encoder: config, loading, streaming layers, and codes identical to the reference."""

from __future__ import annotations

import json
import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_qwen3tts.audio_io import load_audio
from mlx_qwen3tts.codec.encoder import ReplicateCausalConv1d, SpeechEncoder, load_speech_encoder
from mlx_qwen3tts.codec.encoder_config import EncoderConfig
from mlx_qwen3tts.codec.seanet import SeanetEncoder
from reference import build_speech_tokenizer, reference_encode, requires_reference, speech_tokenizer_config, write_speechlike_wav


def _tiny_config() -> EncoderConfig:
    return EncoderConfig.from_speech_tokenizer(speech_tokenizer_config())


def test_config_defaults_and_tiny():
    real = EncoderConfig()
    assert (real.hop_length, real.samples_per_frame) == (960, 1920)
    assert (real.downsample_kernel, real.downsample_stride) == (4, 2)
    tiny = EncoderConfig.from_dict({**speech_tokenizer_config()["encoder_config"], "_frame_rate": 12.5}, 16)
    assert tiny.hidden_size == 32 and tiny.codebook_dim == 16 and tiny.num_codes == 16
    with pytest.raises(ValueError, match="causal"):
        EncoderConfig.from_dict({"use_causal_conv": False})


@pytest.mark.parametrize("samples", [1, 1919, 1920, 1921, 24000, 56880])
def test_frame_count(samples):
    model = SpeechEncoder(_tiny_config())
    wav = mx.random.normal((1, samples)) * 0.1
    codes = model.encode(wav)
    assert codes.shape == (1, math.ceil(samples / 1920), 16) and codes.dtype == mx.int32
    assert mx.array_equal(model.encode(np.array(wav[0])), codes)  # numpy and 1-D input


def test_replicate_padding_and_streaming():
    conv = ReplicateCausalConv1d(3, 5, 4, stride=2, bias=False)
    x = mx.random.normal((1, 11, 3))
    whole = conv(x)
    # Edge frames are repeated: two copies of the first in front, one of the last behind.
    padded = mx.concatenate([x[:, :1], x[:, :1], x, x[:, -1:]], axis=1)
    assert whole.shape[1] == 6
    assert mx.allclose(whole, mx.conv1d(padded, conv.conv.weight, stride=2), atol=1e-5)
    conv.reset_state()
    streamed = mx.concatenate([conv.step(x[:, i : i + 3]) for i in range(0, 11, 3)], axis=1)
    assert streamed.shape[1] == 5  # the last partial window only exists for a whole clip
    assert mx.allclose(streamed, whole[:, :5], atol=1e-5)


def test_seanet_streams_like_a_whole_clip():
    seanet = SeanetEncoder(_tiny_config())
    mx.eval(seanet.parameters())
    wav = mx.random.normal((1, 960 * 6, 1)) * 0.1
    whole = seanet(wav)
    seanet.reset_state()
    parts = [seanet.step(wav[:, i : i + 1000]) for i in range(0, wav.shape[1], 1000)]
    streamed = mx.concatenate(parts, axis=1)
    assert streamed.shape[1] >= 5
    assert mx.allclose(streamed, whole[:, : streamed.shape[1]], atol=1e-4)


@requires_reference
def test_sanitize_maps_official_names_and_loads_strictly():
    model = SpeechEncoder(_tiny_config())
    own = dict(tree_flatten(model.parameters()))
    official = mx.load(str(build_speech_tokenizer() / "model.safetensors"))
    assert any(k.startswith("decoder.") for k in official)
    weights = model.sanitize(official)
    assert set(weights) == set(own)
    assert all(weights[k].shape == own[k].shape for k in own)
    assert weights["quantizer.acoustic.codebooks"].shape == (15, 2048, 16)
    assert model.sanitize(weights).keys() == weights.keys()  # converted weights pass through
    weights.pop("downsample.conv.weight")
    with pytest.raises(ValueError):
        model.load_weights(list(weights.items()), strict=True)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_speech_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(speech_tokenizer_config()))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_speech_encoder(tmp_path)


@pytest.fixture(scope="module")
def tokenizers():
    path = build_speech_tokenizer()
    return path, load_speech_encoder(path)


@requires_reference
@pytest.mark.parametrize("seconds", [1.0, 2.37, 5.0])
def test_codes_identical_to_reference(tmp_path, tokenizers, seconds):
    reference, ours = tokenizers
    path = write_speechlike_wav(tmp_path / "ref.wav", seconds, seed=int(seconds * 100))
    theirs = reference_encode(reference, path)  # librosa load + resample inside
    wav = load_audio(path)
    codes = np.array(ours.encode(mx.array(wav)[None])[0])
    assert codes.shape == theirs.shape == (math.ceil(len(wav) / 1920), 16)
    assert len(np.unique(codes[:, 0])) > 1  # a real signal, not one repeated code
    mismatched = np.argwhere(codes != theirs)
    assert mismatched.size == 0, f"{len(mismatched)} codes differ, first at (frame, codebook) {mismatched[0]}"
