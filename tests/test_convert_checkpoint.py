"""convert: official checkpoints -> MLX folders (float, 8bit, 4bit, mixed), load-time
re-quantization, the errors a user sees, and the quality report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_qwen3tts
from mlx_qwen3tts import convert_checkpoint as convert_module
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.convert_checkpoint import convert, main
from mlx_qwen3tts.models.qwen3_tts import Model
from mlx_qwen3tts.quality import quality_report
from reference import build_checkpoint, requires_reference
from tiny import make_tiny_checkpoint, tiny_config, write_speech_tokenizer, write_text_tokenizer

ROOT = Path(__file__).resolve().parent.parent
GREEDY = dict(speaker="vivian", temperature=0, subtalker_temperature=0, repetition_penalty=1.0, max_new_tokens=12)
TEXT = "hello world"


def scaled_paths(folder: Path, stem: str = "model") -> set[str]:
    return {k[: -len(".scales")] for k in mx.load(str(folder / f"{stem}.safetensors")) if k.endswith(".scales")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("src") / "cv")


@pytest.fixture(scope="module")
def three_layers(tmp_path_factory) -> Path:
    """A tiny checkpoint with 3 talker layers, so `mixed` has a middle layer at 4 bits. With
    group size 32 the talker's widths (32, 64) divide; the 16-wide text projection and most
    code-predictor inputs do not."""
    folder = tmp_path_factory.mktemp("src") / "three"
    folder.mkdir()
    raw = tiny_config()
    raw["talker_config"]["num_hidden_layers"] = 3
    mx.random.seed(1)
    model = Model(ModelConfig.from_dict(raw))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(raw))
    (folder / "generation_config.json").write_text(json.dumps({"max_new_tokens": 100}))
    write_text_tokenizer(folder)
    write_speech_tokenizer(folder / "speech_tokenizer")
    return folder


@pytest.fixture(scope="module")
def recipes(three_layers, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("mlx")
    return {r: convert(three_layers, out / r, quant_recipe=r, q_group_size=32) for r in ("8bit", "4bit", "mixed")}


# ------------------------------------------------------------------ float conversion

def test_float_convert_gives_the_same_codes_and_audio(tiny, tmp_path):
    out = convert(tiny, tmp_path / "mlx")
    for name in ("config.json", "generation_config.json", "README.md", "vocab.json", "merges.txt",
                 "tokenizer_config.json", "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert "quantization" not in config and config["mlx_conversion"]["source"] == str(tiny)
    a, b = mlx_qwen3tts.load(tiny), mlx_qwen3tts.load(out)
    codes = a.generate_codes(TEXT, **GREEDY)
    assert len(codes) >= 3
    np.testing.assert_array_equal(codes, b.generate_codes(TEXT, **GREEDY))
    np.testing.assert_array_equal(a.decode(codes), b.decode(codes))
    # Converting a converted folder changes nothing: sanitize passes MLX weights through.
    again = convert(out, tmp_path / "again")
    assert mx.load(str(again / "model.safetensors")).keys() == mx.load(str(out / "model.safetensors")).keys()


def test_dtype_casts_the_model_but_not_the_codec(tiny, tmp_path):
    out = convert(tiny, tmp_path / "bf16", dtype="bfloat16")
    assert {v.dtype for v in mx.load(str(out / "model.safetensors")).values()} == {mx.bfloat16}
    assert {v.dtype for v in mx.load(str(out / "speech_tokenizer/model.safetensors")).values()} == {mx.float32}
    assert mlx_qwen3tts.load(out, dtype=None).model.talker.codec_head.weight.dtype == mx.bfloat16


# ------------------------------------------------------------------ recipes

def expected_bits(recipe: str, path: str) -> int:
    if "embedding" in path:
        return 8
    if recipe == "8bit" or path.startswith("talker.code_predictor.") or path == "talker.codec_head":
        return 8 if recipe != "4bit" else 4
    if recipe == "mixed" and path.startswith(("talker.model.layers.0.", "talker.model.layers.2.")):
        return 8
    return 4


@pytest.mark.parametrize("recipe", ["8bit", "4bit", "mixed"])
def test_recipe_records_exactly_the_quantized_layers(recipes, recipe):
    out = recipes[recipe]
    block = json.loads((out / "config.json").read_text())["quantization"]
    per_path = {k: v for k, v in block.items() if isinstance(v, dict)}
    assert block["group_size"] == 32 and set(per_path) == scaled_paths(out)
    assert {v["bits"] for v in per_path.values()} <= {4, 8}
    for path, params in per_path.items():
        assert params == {"group_size": 32, "bits": expected_bits(recipe, path)}, path
    assert "talker.model.layers.1.mlp.up_proj" in per_path
    tables = {"talker.model.codec_embedding", *(f"talker.code_predictor.model.codec_embedding.{i}" for i in range(15))}
    assert tables <= set(per_path)
    predictor = {p for p in per_path.keys() - tables if p.startswith("talker.code_predictor.")}
    if recipe == "4bit":
        assert not predictor
    else:
        assert predictor == {"talker.code_predictor.model.layers.0.mlp.down_proj",
                             "talker.code_predictor.small_to_mtp_projection"}
    # Never the speaker encoder, nor a layer whose input width (16) does not divide by 32.
    assert not any(p.startswith("speaker_encoder") for p in per_path)
    for path in ("talker.model.text_embedding", "talker.text_projection.linear_fc1",
                 "talker.code_predictor.model.layers.0.self_attn.q_proj", "talker.code_predictor.lm_head.0"):
        assert path not in per_path


@pytest.mark.parametrize("recipe", ["8bit", "4bit", "mixed"])
def test_recipe_loads_and_generates_with_a_float_codec(recipes, recipe):
    out = recipes[recipe]
    tts = mlx_qwen3tts.load(out)
    modules = dict(tts.model.named_modules())
    for path in scaled_paths(out):
        kind = nn.QuantizedEmbedding if "embedding" in path else nn.QuantizedLinear
        assert isinstance(modules[path], kind), path
    assert isinstance(modules["talker.text_projection.linear_fc1"], nn.Linear)
    assert not isinstance(modules["talker.text_projection.linear_fc1"], nn.QuantizedLinear)
    codes = tts.generate_codes(TEXT, **GREEDY)
    assert codes.shape[1] == 16 and len(codes) >= 1 and (codes >= 0).all() and (codes < 2048).all()
    assert not scaled_paths(out / "speech_tokenizer")
    assert {v.dtype for _, v in tree_flatten(tts.speech_decoder.parameters())} == {mx.float32}
    assert tts.generate(TEXT, speaker="vivian", max_new_tokens=4, seed=0).samples.dtype == np.float32


def test_group_size_that_divides_nothing(three_layers, tmp_path):
    with pytest.raises(ValueError, match="no layer whose input width divides by group size 128"):
        convert(three_layers, tmp_path / "q", quantize=True, q_group_size=128)
    assert not (tmp_path / "q").exists()


def test_quantized_folder_needs_a_matching_block(recipes, tmp_path):
    def broken(edit) -> Path:
        folder = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(recipes["8bit"], folder)
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    with pytest.raises(ValueError, match="no 'quantization' block"):
        mlx_qwen3tts.load(broken(lambda c: c.pop("quantization")))
    with pytest.raises(ValueError, match="does not match the weights"):
        mlx_qwen3tts.load(broken(lambda c: c["quantization"]["talker.codec_head"].update(bits=4)))
    with pytest.raises(ValueError, match="does not match the weights"):
        mlx_qwen3tts.load(broken(lambda c: c["quantization"].update({"talker.text_projection.linear_fc1": {
            "group_size": 32, "bits": 8}})))


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("kwargs, message", [
    (dict(quantize=True, q_bits=3), "unsupported --q-bits 3"),
    (dict(quantize=True, q_group_size=48), "unsupported --q-group-size 48"),
    (dict(quant_recipe="2bit"), "unknown quantization recipe"),
    (dict(quant_recipe="4bit", q_bits=8), "contradicts"),
    (dict(dtype="int8"), "unknown dtype"),
])
def test_bad_options(tiny, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        convert(tiny, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_source_must_be_a_qwen3_tts_checkpoint(tmp_path, recipes):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a Qwen3-TTS checkpoint: it has no config.json"):
        convert(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="not a Qwen3-TTS checkpoint.*'llama'"):
        convert(tmp_path / "llama", tmp_path / "out")
    with pytest.raises(ValueError, match="already quantized"):
        convert(recipes["4bit"], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "llama"]


def test_existing_output_needs_force(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        convert(tiny, out)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="overwrite the source"):
        convert(tiny, tiny, force=True)
    convert(tiny, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_convert_leaves_nothing_behind(tiny, tmp_path, monkeypatch):
    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(convert_module, "_write_speech_tokenizer", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        convert(tiny, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="disk full"):
        convert(tiny, tmp_path / "old", force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["old"] and (tmp_path / "old" / "keep.txt").exists()


# ------------------------------------------------------------------ report and CLI

def test_report_measures_the_quantization_error(tiny, three_layers, recipes, tmp_path):
    float_out = convert(tiny, tmp_path / "float")
    [same] = quality_report(float_out, prompts=("hello world",), frames=6)
    assert same["kl"] < 1e-6 and same["top1"] == same["top5"] == same["cp_top1"] == 1.0
    [four] = quality_report(recipes["4bit"], prompts=("hello world",), frames=6)
    assert four["kl"] > 1e-5 and 0 <= four["top1"] <= 1 and four["frames"] == 6
    assert four["weights_mb"] < four["source"]["weights_mb"]


def test_cli_converts_checks_and_reports_errors(three_layers, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["--hf-path", str(three_layers), "--mlx-path", str(out), "-q", "--q-bits", "4", "--q-group-size", "32",
          "--check"])
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "talker KL" in printed and "cli (4bit)" in printed
    assert json.loads((out / "config.json").read_text())["mlx_conversion"]["recipe"] == "4bit"
    with pytest.raises(SystemExit) as e:
        main(["--hf-path", str(three_layers), "--mlx-path", str(out)])
    assert e.value.code == 2 and "already exists; pass --force" in capsys.readouterr().err


def test_top_level_script(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "convert.py"), "--hf-path", str(tmp_path), "--mlx-path",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "not a Qwen3-TTS checkpoint" in run.stderr


# ------------------------------------------------------------------ official layout (reference)

@requires_reference
def test_official_custom_voice_converts_to_identical_codes(tmp_path):
    official = build_checkpoint("custom_voice", "proj", "1b7")
    out = convert(official, tmp_path / "mlx")
    a, b = mlx_qwen3tts.load(official), mlx_qwen3tts.load(out)
    codes = a.generate_codes("Hello world, this is a test.", **GREEDY)
    np.testing.assert_array_equal(codes, b.generate_codes("Hello world, this is a test.", **GREEDY))
    np.testing.assert_array_equal(a.decode(codes), b.decode(codes))


@requires_reference
def test_official_base_keeps_encoders_exact_and_unquantized(tmp_path):
    from mlx_qwen3tts.codec.encoder import load_speech_encoder

    official = build_checkpoint("base", "proj", "0b6", seed=2)
    wav = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    ref = mlx_qwen3tts.load(official)
    voice = ref.clone_voice((wav, 24000), x_vector_only=True)
    kw = dict(GREEDY, speaker=None, voice=voice)
    codes = ref.generate_codes("Hello world.", **kw)
    for name, options in {"float": {}, "8bit": dict(quantize=True, q_group_size=32)}.items():
        out = convert(official, tmp_path / name, **options)
        tts = mlx_qwen3tts.load(out)
        assert not any(p.startswith("speaker_encoder") for p in scaled_paths(out))
        assert not scaled_paths(out / "speech_tokenizer")
        np.testing.assert_array_equal(tts.clone_voice((wav, 24000), x_vector_only=True).x_vector, voice.x_vector)
        np.testing.assert_array_equal(np.asarray(load_speech_encoder(out / "speech_tokenizer").encode(wav)),
                                      np.asarray(load_speech_encoder(official / "speech_tokenizer").encode(wav)))
        if name == "float":
            np.testing.assert_array_equal(tts.generate_codes("Hello world.", **kw), codes)
        else:
            assert scaled_paths(out) and tts.generate_codes("Hello world.", **kw).shape[1] == 16
