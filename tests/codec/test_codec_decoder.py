"""The speech decoder without the reference: config, weight conversion, loading, streaming."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from codec_helpers import CHUNKS, max_diff, random_codes, random_decoder, stream
from mlx.utils import tree_flatten

from mlx_qwen3tts.codec import (
    DecoderConfig,
    SpeechDecoder,
    SpeechTokenizerConfig,
    chunked_decode,
    load_speech_decoder,
)
from mlx_qwen3tts.codec.quantizer import codebook_vectors

RELEASED_DECODER = {
    "attention_bias": False, "attention_dropout": 0.0, "codebook_dim": 512, "codebook_size": 2048,
    "decoder_dim": 1536, "head_dim": 64, "hidden_act": "silu", "hidden_size": 512,
    "intermediate_size": 1024, "latent_dim": 1024, "layer_scale_initial_scale": 0.01,
    "max_position_embeddings": 8000, "num_attention_heads": 16, "num_hidden_layers": 8,
    "num_key_value_heads": 16, "num_quantizers": 16, "num_semantic_quantizers": 1,
    "rms_norm_eps": 1e-05, "rope_theta": 10000, "semantic_codebook_size": 4096,
    "sliding_window": 72, "upsample_rates": [8, 5, 4, 3], "upsampling_ratios": [2, 2],
    "vector_quantization_hidden_dimension": 512,
}


def _config_json(decoder: dict) -> dict:
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"], "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": 16, "input_sample_rate": 24000, "output_sample_rate": 24000,
        "decode_upsample_rate": 1920, "encode_downsample_rate": 1920, "transformers_version": "4.57.3",
        "encoder_config": {"hidden_size": 512, "num_filters": 64}, "decoder_config": decoder,
    }


# ----------------------------------------------------------------- config

def test_config_reads_released_values():
    cfg = SpeechTokenizerConfig.from_dict(_config_json(RELEASED_DECODER))
    assert cfg.decoder == DecoderConfig()
    assert cfg.decoder.total_upsample == cfg.decode_upsample_rate == 1920
    assert cfg.encoder_config == {"hidden_size": 512, "num_filters": 64}
    assert cfg.output_sample_rate == 24000


def test_config_without_head_dim_splits_hidden():
    d = {k: v for k, v in RELEASED_DECODER.items() if k != "head_dim"}
    assert DecoderConfig.from_dict(d).head_dim == 512 // 16


def test_config_rejects_other_model_types(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_config_json(RELEASED_DECODER), "model_type": "qwen3_tts"}))
    with pytest.raises(ValueError, match="qwen3_tts_tokenizer_12hz"):
        SpeechTokenizerConfig.from_file(path)


# ----------------------------------------------------------------- official layout round trip

_CONVT = ("upsample.0.0.", "upsample.1.0.", ".block.1.")


def _official(decoder: SpeechDecoder, seed: int = 0) -> dict[str, mx.array]:
    """Our weights written back in the official names and PyTorch layouts."""
    rng = np.random.default_rng(seed)
    out = {"encoder.encoder.layers.0.conv.weight": mx.zeros((4, 1, 7))}
    for key, value in tree_flatten(decoder.parameters()):
        if key.endswith(".codebooks"):
            group = key.split(".")[1]
            for i, vectors in enumerate(value):
                # Powers of two keep sum / usage exact.
                usage = mx.array(2.0 ** rng.integers(-3, 4, vectors.shape[0]), dtype=mx.float32)
                prefix = f"decoder.quantizer.{group}.vq.layers.{i}._codebook."
                out[prefix + "cluster_usage"] = usage
                out[prefix + "embedding_sum"] = vectors * usage[:, None]
            out[f"decoder.quantizer.{group}.input_proj.weight"] = mx.zeros((8, 16, 1))
            continue
        if key.startswith("quantizer.") and key.endswith("output_proj.weight"):
            value = value[..., None]
        elif key.endswith("conv.weight"):
            convt = any(tag in key for tag in _CONVT)
            value = value.transpose(2, 0, 1) if convt else value.transpose(0, 2, 1)
        if key.startswith("vocoder."):
            key = "decoder." + key[len("vocoder."):]
        out["decoder." + key] = value
    return out


def test_sanitize_maps_every_official_weight():
    decoder = random_decoder(0)
    official = _official(decoder)
    ours = dict(tree_flatten(decoder.parameters()))
    converted = SpeechDecoder(decoder.config).sanitize(official)
    assert converted.keys() == ours.keys()
    for key, value in converted.items():
        assert max_diff(value, ours[key]) == 0.0, key
    # Already converted weights pass through unchanged.
    again = decoder.sanitize(converted)
    assert again.keys() == converted.keys()
    assert all(again[k] is converted[k] for k in again)


def test_official_weights_decode_identically():
    decoder = random_decoder(1)
    fresh = SpeechDecoder(decoder.config)
    fresh.load_weights(list(fresh.sanitize(_official(decoder)).items()), strict=True)
    codes = random_codes(2, 6, 4, 64)
    assert max_diff(fresh(codes), decoder(codes)) < 1e-6


def _write_folder(path, decoder: SpeechDecoder) -> None:
    from dataclasses import asdict

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(_config_json(asdict(decoder.config))))
    mx.save_safetensors(str(path / "model.safetensors"), _official(decoder))


def test_load_speech_decoder(tmp_path):
    decoder = random_decoder(2)
    _write_folder(tmp_path, decoder)
    codes = random_codes(1, 5, 4, 64)
    loaded = load_speech_decoder(tmp_path)
    assert max_diff(loaded(codes), decoder(codes)) < 1e-6
    half = load_speech_decoder(tmp_path, dtype=mx.bfloat16)
    assert half.pre_conv.conv.weight.dtype == mx.bfloat16
    wav = half(codes)
    assert wav.dtype == mx.float32
    # A random decoder amplifies rounding, so compare shapes of the waveforms, not samples.
    corr = np.corrcoef(np.array(wav)[0], np.array(decoder(codes))[0])[0, 1]
    assert corr > 0.9


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_speech_decoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_config_json(RELEASED_DECODER)))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_speech_decoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mimi"}))
    with pytest.raises(ValueError, match="mimi"):
        load_speech_decoder(tmp_path)


def _write_converted(path, decoder: SpeechDecoder, **extra: mx.array) -> None:
    """A converted folder: the decoder in MLX layout, plus `extra` tensors in the same file."""
    from dataclasses import asdict

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(_config_json(asdict(decoder.config))))
    mx.save_safetensors(str(path / "model.safetensors"), {**dict(tree_flatten(decoder.parameters())), **extra})


def test_encoder_keys_in_the_file_are_not_the_decoders(tmp_path):
    from reference import speech_tokenizer_config

    from mlx_qwen3tts.codec.encoder import EncoderConfig, SpeechEncoder

    decoder = random_decoder(9)
    encoder = SpeechEncoder(EncoderConfig.from_speech_tokenizer(speech_tokenizer_config()))
    mlx_encoder = dict(tree_flatten(encoder.parameters()))
    assert any(k.startswith("quantizer.") for k in mlx_encoder)  # a top-level name both share
    official = {
        "encoder.encoder.layers.0.conv.weight": mx.zeros((4, 1, 7)),
        "encoder.quantizer.semantic_residual_vector_quantizer.layers.0.codebook.embed_sum": mx.zeros((8, 16)),
    }
    _write_converted(tmp_path, decoder, **mlx_encoder, **official)
    own = dict(tree_flatten(decoder.parameters()))
    assert decoder.sanitize(mx.load(str(tmp_path / "model.safetensors"))).keys() == own.keys()
    codes = random_codes(1, 5, 4, 64, seed=9)
    assert max_diff(load_speech_decoder(tmp_path)(codes), decoder(codes)) == 0.0


def test_a_missing_or_misshapen_decoder_weight_still_fails(tmp_path):
    decoder = random_decoder(10)
    _write_converted(tmp_path, decoder, **{"seanet.layers.0.conv.weight": mx.zeros((4, 7, 1))})
    weights = mx.load(str(tmp_path / "model.safetensors"))
    weights.pop("pre_conv.conv.weight")
    mx.save_safetensors(str(tmp_path / "model.safetensors"), weights)
    with pytest.raises(ValueError, match="pre_conv.conv.weight"):
        load_speech_decoder(tmp_path)
    weights["pre_conv.conv.weight"] = mx.zeros((1, 2, 3))
    mx.save_safetensors(str(tmp_path / "model.safetensors"), weights)
    with pytest.raises(ValueError, match="pre_conv.conv.weight"):
        load_speech_decoder(tmp_path)


def test_codebook_vectors_clamp_usage():
    sums = mx.array([[1.0, -2.0], [3.0, 4.0], [1e-5, 2e-5]])
    usage = mx.array([2.0, 0.0, 1e-7])
    want = np.array([[0.5, -1.0], [3e5, 4e5], [1.0, 2.0]])
    got = np.array(codebook_vectors(sums, usage))
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ----------------------------------------------------------------- decoding

def test_output_shape_and_range():
    decoder = random_decoder(3)
    wav = decoder(random_codes(2, 7, 4, 64))
    assert wav.shape == (2, 7 * decoder.samples_per_frame) and wav.dtype == mx.float32
    assert float(mx.abs(wav).max()) <= 1.0
    assert float(mx.abs(wav).max()) > 0.01
    with pytest.raises(ValueError, match="codes of shape"):
        decoder(random_codes(1, 3, 5, 64))


def test_padding_codes_decode_as_zero():
    decoder = random_decoder(3)
    codes = random_codes(1, 4, 4, 64)
    padded = mx.concatenate([codes, mx.full((1, 2, 4), -1, dtype=codes.dtype)], axis=1)
    zeros = mx.concatenate([codes, mx.zeros((1, 2, 4), dtype=codes.dtype)], axis=1)
    assert max_diff(decoder(padded), decoder(zeros)) == 0.0


@pytest.mark.parametrize("seed,overrides", [(4, {}), (5, {"sliding_window": 3, "upsample_rates": [2, 3, 2, 2]})])
def test_streaming_equals_offline(seed, overrides):
    decoder = random_decoder(seed, **overrides)
    codes = random_codes(2, 17, 4, 64, seed=seed)
    full = decoder(codes)
    for chunk in CHUNKS:
        assert max_diff(stream(decoder, codes, chunk), full) < 1e-5, f"chunk {chunk}"
    # Causality: a longer clip never changes the earlier samples.
    prefix = decoder(codes[:, :9])
    assert max_diff(full[:, : prefix.shape[1]], prefix) < 1e-5


def test_stream_state_stays_bounded():
    from mlx_qwen3tts.codec.conv import CausalConv1d, CausalConvTranspose1d

    decoder = random_decoder(8, sliding_window=4)
    codes = random_codes(1, 60, 4, 64, seed=8)
    decoder.reset_state()
    for i in range(60):
        mx.eval(decoder.step(codes[:, i : i + 1]))
    convs = [m for m in decoder.modules() if isinstance(m, CausalConv1d)]
    convts = [m for m in decoder.modules() if isinstance(m, CausalConvTranspose1d)]
    assert convs and convts
    assert all(m._buffer.shape[1] == m.span - 1 for m in convs)
    assert all(m._tail is None or m._tail.shape[1] == m.trim for m in convts)
    assert all(c.offset == 60 and c.keys.shape[2] <= 4 for c in decoder.pre_transformer.caches)


def test_chunked_decode_windows():
    decoder = random_decoder(6)
    codes = random_codes(1, 23, 4, 64, seed=6)
    hop = decoder.samples_per_frame
    assert max_diff(chunked_decode(decoder, codes, chunk_size=23), decoder(codes)) < 1e-6
    wav = chunked_decode(decoder, codes, chunk_size=10, left_context=4)
    assert wav.shape == (1, 23 * hop)
    assert max_diff(wav[:, : 10 * hop], decoder(codes[:, :10])) < 1e-6
    assert max_diff(wav[:, 10 * hop : 20 * hop], decoder(codes[:, 6:20])[:, 4 * hop :]) < 1e-6
    assert max_diff(wav[:, 20 * hop :], decoder(codes[:, 16:23])[:, 4 * hop :]) < 1e-6
    # The windows lose context a full decode has (the transformer sees 6 frames back).
    assert max_diff(wav, decoder(codes)) > 1e-4


def test_device_kernels_decode_the_same(monkeypatch):
    import mlx_qwen3tts.codec.conv as conv

    decoder = random_decoder(7)
    codes = random_codes(1, 11, 4, 64, seed=7)
    cpu = decoder(codes)
    # The native conv ops and the fused SnakeBeta used off the CPU (they also run here).
    monkeypatch.setattr(conv, "_on_cpu", lambda: False)
    native = decoder(codes)
    assert max_diff(native, cpu) < 1e-5
    assert max_diff(stream(decoder, codes, 3), native) < 1e-5
