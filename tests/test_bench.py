"""The benchmark CLI and its offline checkpoint maker, on a tiny random checkpoint (not timed)."""

from __future__ import annotations

import json

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

import mlx_qwen3tts
from mlx_qwen3tts.bench import main
from mlx_qwen3tts.bench_checkpoint import make_checkpoint, model_config
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.models.qwen3_tts import Model

FILES = ["config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt",
         "tokenizer_config.json", "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_checkpoint("tiny", "custom_voice", tmp_path_factory.mktemp("ckpt") / "tiny")


def test_checkpoint_has_official_files_and_loads(tiny):
    for name in FILES:
        assert (tiny / name).is_file(), name
    tts = mlx_qwen3tts.load(tiny)
    assert tts.kind == "custom_voice" and "vivian" in tts.speakers
    assert tts.tokenizer.token_id("<tts_pad>") == 151671 and tts.tokenizer.token_id("<|im_start|>") == 151644
    assert tts.model.talker.codec_head.weight.dtype == mx.bfloat16
    assert tts.speech_decoder.samples_per_frame == 1920


def test_checkpoint_is_reused(tiny):
    stamp = (tiny / "model.safetensors").stat().st_mtime_ns
    assert make_checkpoint("tiny", "custom_voice", tiny) == tiny
    assert (tiny / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("size, tensors, millions", [("0.6b", 402, 905.79), ("1.7b", 404, 1916.68)])
def test_real_sizes_have_the_official_shapes(size, tensors, millions):
    # Counted on the lazy model: nothing is allocated or written.
    params = tree_flatten(Model(ModelConfig.from_dict(model_config(size, "custom_voice"))).parameters())
    assert len(params) == tensors
    assert sum(v.size for _, v in params) / 1e6 == pytest.approx(millions, abs=0.01)
    assert dict(params)["talker.code_predictor.model.layers.4.mlp.down_proj.weight"].shape == (1024, 3072)


def test_bench_writes_json(tiny, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--model", str(tiny), "--frames", "5", "--runs", "1", "--dtype", "float32",
                 "--json", str(out)]) == 0
    assert "time to first audio chunk" in capsys.readouterr().out
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert result["stack"] == "mlx_qwen3tts" and result["dtype"] == "float32"
    assert 1 <= result["frames"] <= 5
    assert result["audio_seconds"] == pytest.approx(result["frames"] * 0.08)
    for key in ("first_chunk_s", "rtf", "prefill_s", "talker_code_predictor_ms", "decode_ms", "ms_per_frame"):
        assert result[key] > 0, key
    assert result["peak_memory_mb"] is None or result["peak_memory_mb"] > 0
    assert len(data["runs"]) == 1


def test_make_checkpoint_flag_uses_out(tmp_path, capsys):
    folder = tmp_path / "vd"
    assert main(["--make-checkpoint", "tiny", "--kind", "voice_design", "--out", str(folder),
                 "--frames", "2", "--runs", "1"]) == 0
    assert "voice_design" in capsys.readouterr().out
    assert json.loads((folder / "config.json").read_text())["tts_model_type"] == "voice_design"


def test_missing_folder_is_one_line_and_exit_1(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


@pytest.mark.parametrize("argv", [["--model", "x", "--bogus"], ["--make-checkpoint", "3b"], []])
def test_bad_options_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_bad_frames_exit_1(tiny, capsys):
    assert main(["--model", str(tiny), "--frames", "0"]) == 1
    assert "--frames" in capsys.readouterr().err
