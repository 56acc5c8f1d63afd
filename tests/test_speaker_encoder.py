"""ECAPA-TDNN speaker encoder: config, weight loading and x-vector parity with the reference."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_qwen3tts.audio_io import load_audio
from mlx_qwen3tts.models.speaker_encoder import (
    SpeakerEncoder,
    SpeakerEncoderConfig,
    conv_layout,
    load_speaker_encoder,
)
from reference import build_speaker_encoder, reference_x_vector, requires_reference, write_speechlike_wav

TINY = {
    "mel_dim": 128, "enc_dim": 64, "enc_channels": [32, 32, 32, 32, 96],
    "enc_kernel_sizes": [5, 3, 3, 3, 1], "enc_dilations": [1, 2, 3, 4, 1],
    "enc_attention_channels": 16, "enc_res2net_scale": 8, "enc_se_channels": 16, "sample_rate": 24000,
}


def test_config_defaults_and_nesting():
    cfg = SpeakerEncoderConfig.from_dict({"speaker_encoder_config": {"enc_dim": 2048, "sample_rate": 24000}})
    assert cfg.enc_dim == 2048 and cfg.enc_channels == [512, 512, 512, 512, 1536]
    assert cfg.enc_dilations == [1, 2, 3, 4, 1] and cfg.mel_dim == 128
    with pytest.raises(ValueError, match="same length"):
        SpeakerEncoderConfig.from_dict({"enc_channels": [8, 8, 24], "enc_kernel_sizes": [5, 3]})


def test_shapes_and_strict_loading():
    model = SpeakerEncoder(SpeakerEncoderConfig.from_dict(TINY))
    mx.eval(model.parameters())
    assert model(mx.zeros((2, 50, 128))).shape == (2, 64)
    flat = dict(tree_flatten(model.parameters()))
    assert flat["blocks.1.res2net_block.blocks.0.conv.weight"].shape == (4, 3, 4)
    assert flat["asp.tdnn.conv.weight"].shape == (16, 1, 288)
    # Official layout: (out, in, k) under the prefix; other checkpoint parts are ignored.
    official = {f"speaker_encoder.{k}": (v.transpose(0, 2, 1) if v.ndim == 3 else v) for k, v in flat.items()}
    official["talker.model.norm.weight"] = mx.ones((8,))
    loaded = model.sanitize(official)
    assert set(loaded) == set(flat)
    assert all(mx.array_equal(loaded[k], flat[k]) for k in flat)
    assert model.sanitize(flat).keys() == flat.keys()  # converted weights pass through untouched
    del loaded["fc.bias"]
    with pytest.raises(ValueError):
        model.load_weights(list(loaded.items()), strict=True)


def test_conv_layout_is_read_off_the_known_kernel_sizes():
    # Res2Net width 3 with kernel 3: those convs are (3, 3, 3) in both layouts, where a guess from
    # the shapes alone transposed MLX-layout weights. blocks.0 (kernel 5, 128 in) tells the layout.
    model = SpeakerEncoder(SpeakerEncoderConfig.from_dict(TINY | {"enc_channels": [24, 24, 24, 24, 72]}))
    mx.eval(model.parameters())
    flat = dict(tree_flatten(model.parameters()))
    square = "blocks.1.res2net_block.blocks.0.conv.weight"
    assert flat[square].shape == (3, 3, 3)
    official = {k: v.transpose(0, 2, 1) if v.ndim == 3 else v for k, v in flat.items()}
    for weights, fmt in ((flat, "mlx"), (flat, "pt"), (flat, None), (official, "pt"), (official, "mlx"), (official, None)):
        loaded = model.sanitize({f"speaker_encoder.{k}": v for k, v in weights.items()}, fmt)
        assert all(mx.array_equal(loaded[k], flat[k]) for k in flat), fmt
    shapes = {k: v.shape for k, v in flat.items()}
    # The file's metadata decides only when no conv can tell.
    assert conv_layout({square: flat[square]}, shapes, "mlx") == "mlx"
    assert conv_layout({square: flat[square]}, shapes, None) == "pt"
    with pytest.raises(ValueError, match="mix the PyTorch"):
        conv_layout({"blocks.0.conv.weight": flat["blocks.0.conv.weight"], "fc.weight": official["fc.weight"]}, shapes)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_speaker_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"talker_config": {}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="Base"):
        load_speaker_encoder(tmp_path)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    """A random official speaker encoder, saved as a Base checkpoint folder would hold it."""
    return build_speaker_encoder(tmp_path_factory.mktemp("base"), TINY, seed=7)


@requires_reference
@pytest.mark.parametrize("seconds", [1.0, 2.37, 5.0])
def test_x_vector_matches_reference(tmp_path, tiny_reference, seconds):
    folder = tiny_reference
    path = write_speechlike_wav(tmp_path / "ref.wav", seconds, seed=int(seconds * 100))
    # The reference's own path: librosa load + resample, mel, encoder, first batch item.
    theirs = reference_x_vector(folder, path)
    ours = np.array(load_speaker_encoder(folder).x_vector(load_audio(path)))
    assert ours.shape == theirs.shape == (64,)
    rel = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert rel <= 1e-4, f"x-vector relative difference {rel:.2e}"
