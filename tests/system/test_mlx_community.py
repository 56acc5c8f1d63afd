"""mlx-community conversions (made by tests/mlx_community.py from tiny official checkpoints)
load with `load()` and give the official folder's weights and greedy codes at the same dtype."""

from __future__ import annotations

import filecmp
import json
import shutil

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_qwen3tts
from mlx_community import write_mlx_community
from reference import build_checkpoint, requires_reference
from tiny import make_tiny_checkpoint

TEXT = "Hello world, this is a test."
GREEDY = dict(temperature=0, subtalker_temperature=0, repetition_penalty=1.0, max_new_tokens=12)
DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16}


@pytest.fixture(scope="module")
def official():
    # The "proj" talker is 64 wide with a 128-wide MLP and a 32-wide code predictor: group 64
    # quantizes the talker, codec_head, small_to_mtp_projection (which has a bias) and the
    # predictor's down_proj, and leaves the 48-wide text projection and the 32-wide layers float.
    return {"base": build_checkpoint("base", "proj", "0b6", seed=2), "custom_voice": build_checkpoint("custom_voice", "proj", "1b7")}


@pytest.fixture(scope="module")
def wav():
    return np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1


def greedy_codes(tts, kind: str, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Greedy codes, and for a Base model the x-vector cloned from `wav` that they used."""
    if kind == "custom_voice":
        return tts.generate_codes(TEXT, speaker="vivian", **GREEDY), None
    voice = tts.clone_voice((wav, 24000), x_vector_only=True)
    return tts.generate_codes(TEXT, voice=voice, **GREEDY), voice.x_vector


@requires_reference
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kind", ["base", "custom_voice"])
def test_float_folder_matches_the_official_one(official, wav, tmp_path, kind, dtype):
    folder = write_mlx_community(official[kind], tmp_path / "community", dtype=DTYPES[dtype])
    stored = mx.load(str(folder / "model.safetensors"), return_metadata=True)
    assert stored[1] == {"format": "mlx"} and (folder / "model.safetensors.index.json").is_file()
    if kind == "base":  # the layout under test: MLX's (out, kernel, in), not the official (out, in, kernel)
        assert stored[0]["speaker_encoder.blocks.0.conv.weight"].shape == (32, 5, 128)
    assert not filecmp.dircmp(official[kind] / "speech_tokenizer", folder / "speech_tokenizer").diff_files

    theirs, ours = mlx_qwen3tts.load(official[kind], dtype=dtype), mlx_qwen3tts.load(folder, dtype=None)
    want, got = dict(tree_flatten(theirs.model.parameters())), dict(tree_flatten(ours.model.parameters()))
    assert got.keys() == want.keys()
    for name, value in want.items():
        # The speaker encoder always runs in float32 (its long sums over time); the rest as asked.
        expected = mx.float32 if name.startswith("speaker_encoder.") else DTYPES[dtype]
        assert got[name].dtype == value.dtype == expected, name
        assert mx.array_equal(got[name], value), name
    codes, x_vector = greedy_codes(theirs, kind, wav)
    again, x_again = greedy_codes(ours, kind, wav)
    assert codes.shape[0] >= 2
    np.testing.assert_array_equal(again, codes)
    if kind == "base":
        np.testing.assert_array_equal(x_again, x_vector)


@requires_reference
@pytest.mark.parametrize("kind,bits", [("custom_voice", 8), ("custom_voice", 6), ("custom_voice", 4), ("base", 8)])
def test_quantized_folder_loads_and_generates(official, wav, tmp_path, kind, bits):
    folder = write_mlx_community(official[kind], tmp_path / f"q{bits}", bits=bits, group_size=64)
    config = json.loads((folder / "config.json").read_text())
    assert config["quantization"] == config["quantization_config"] == {"group_size": 64, "bits": bits, "mode": "affine"}
    stored = mx.load(str(folder / "model.safetensors"))
    proj = "talker.code_predictor.small_to_mtp_projection"
    assert stored[f"{proj}.weight"].dtype == mx.uint32 and f"{proj}.bias" in stored

    tts = mlx_qwen3tts.load(folder, dtype=None)
    modules = dict(tts.model.named_modules())
    quantized = {p for p, m in modules.items() if isinstance(m, nn.QuantizedLinear)}
    assert quantized == {k[: -len(".scales")] for k in stored if k.endswith(".scales")}
    assert {"talker.codec_head", proj, "talker.model.layers.1.mlp.down_proj"} <= quantized
    assert all((modules[p].bits, modules[p].group_size) == (bits, 64) for p in quantized)
    assert not any(p.startswith("speaker_encoder") or "embedding" in p or "text_projection" in p for p in quantized)
    assert mx.array_equal(modules[proj].bias, stored[f"{proj}.bias"])

    # The right bits and groups reproduce the float layer: off by at most the rounding of N bits.
    float_tts = mlx_qwen3tts.load(official[kind], dtype="bfloat16")
    h = mx.random.normal((3, 64), key=mx.random.key(0)).astype(mx.bfloat16)
    want = float_tts.model.talker.codec_head(h).astype(mx.float32)
    err = mx.abs(tts.model.talker.codec_head(h).astype(mx.float32) - want).max() / mx.abs(want).max()
    assert err.item() < {8: 0.04, 6: 0.08, 4: 0.2}[bits], err.item()  # about half of these here

    codes, x_vector = greedy_codes(tts, kind, wav)
    assert codes.ndim == 2 and codes.shape[1] == 16 and codes.shape[0] >= 1
    assert (codes >= 0).all() and (codes < 2048).all()
    if kind == "base":  # the speaker encoder is never quantized
        np.testing.assert_array_equal(x_vector, greedy_codes(float_tts, kind, wav)[1])


def test_folder_without_codec_weights_says_where_to_get_them(tmp_path):
    folder = write_mlx_community(make_tiny_checkpoint(tmp_path / "cv"), tmp_path / "community")
    (folder / "speech_tokenizer" / "model.safetensors").unlink()
    codec = folder / "speech_tokenizer"
    with pytest.raises(FileNotFoundError) as e:
        mlx_qwen3tts.load(folder)
    assert f"{codec / 'model.safetensors'} is missing" in str(e.value)
    assert f"huggingface-cli download Qwen/Qwen3-TTS-Tokenizer-12Hz --local-dir {codec}" in str(e.value)
    shutil.rmtree(codec)
    with pytest.raises(FileNotFoundError, match="speech_tokenizer/ folder is missing.*Qwen3-TTS-Tokenizer-12Hz"):
        mlx_qwen3tts.load(folder)
