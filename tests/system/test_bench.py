"""The benchmark CLI and its offline checkpoint maker, on a tiny random checkpoint (not timed)."""

from __future__ import annotations

import json
import os

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

import mlx_qwen3tts
from mlx_qwen3tts.bench import main
from mlx_qwen3tts.testing import make_checkpoint, model_config
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.models.qwen3_tts import Model
from mlx_qwen3tts.rtf import frame_bytes
from official.venv import reference_python
from reference import requires_reference

FILES = ["config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt",
         "tokenizer_config.json", "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_checkpoint("tiny", "custom_voice", tmp_path_factory.mktemp("ckpt") / "tiny")


def test_checkpoint_has_official_files_and_loads(tiny):
    for name in FILES:
        assert (tiny / name).is_file(), name
    tts = mlx_qwen3tts.load(tiny, dtype=None)  # as written, also on the CPU
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


FIELDS = ["stack", "dtype", "quantization", "ms_per_frame", "talker_ms", "code_predictor_ms", "decode_ms",
          "kernel_floor_ms", "rtf", "first_chunk_s", "host_syncs_per_frame", "peak_memory_mb"]


def test_bench_writes_json(tiny, tmp_path, capsys):
    out = tmp_path / "bench.json"
    # Two runs: medians of integer counts come back as floats.
    assert main(["--model", str(tiny), "--frames", "5", "--runs", "2", "--dtype", "float32", "--quantize", "8",
                 "--floor-reps", "2", "--vs", "mlx-audio", "--device-report", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "time to first audio chunk" in printed and "kernel floor" in printed
    assert printed.count("device report: custom_voice 0.6B") == 2 and "implied bandwidth" in printed
    assert "mlx-audio: skipped: mlx-audio is not installed" in printed
    data = json.loads(out.read_text())
    plain, quantized = data["results"]
    for result in (plain, quantized):
        assert set(FIELDS) <= set(result)
        assert result["stack"] == "mlx_qwen3tts" and result["dtype"] == "float32"
        assert 1 <= result["frames"] <= 5
        assert result["audio_seconds"] == pytest.approx(result["frames"] * 0.08)
        for key in ("first_chunk_s", "rtf", "prefill_s", "talker_code_predictor_ms", "talker_ms",
                    "code_predictor_ms", "kernel_floor_ms", "kernel_floor_talker_ms",
                    "kernel_floor_code_predictor_ms", "decode_ms", "ms_per_frame"):
            assert result[key] > 0, key
        assert result["ms_per_frame"] == pytest.approx(result["talker_code_predictor_ms"] + result["decode_ms"])
        assert result["peak_memory_mb"] is None or result["peak_memory_mb"] > 0
    assert plain["quantization"] is None and quantized["quantization"] == 8 and quantized["quantized_layers"] > 0
    # The report counts the loaded model's own parameters: fewer bytes once quantized.
    assert plain["device_report"]["frame_bytes"] == frame_bytes(mlx_qwen3tts.load(tiny, dtype="float32").model)
    assert 0 < quantized["device_report"]["frame_bytes"] < plain["device_report"]["frame_bytes"]
    assert plain["device_report"]["loop_ms"] == plain["talker_code_predictor_ms"]
    if plain["frames"] > 2:
        assert plain["host_syncs_per_frame"] <= 1
    assert data["skipped"] == [{"stack": "mlx-audio", "reason": "mlx-audio is not installed (pip install mlx-audio)"}]
    assert len(data["runs"]["mlx_qwen3tts float32"]) == 2


@requires_reference
def test_bench_against_reference(tiny, tmp_path, capsys):
    out = tmp_path / "bench.json"
    python = str(reference_python())  # the official implementation's own venv, not this interpreter
    assert main(["--model", str(tiny), "--frames", "4", "--runs", "1", "--dtype", "float32", "--floor-reps", "1",
                 "--vs", "reference", "--reference-python", python, "--json", str(out)]) == 0
    assert "speed vs reference" in capsys.readouterr().out
    ours, ref = json.loads(out.read_text())["results"]
    assert ref["stack"] == "reference" and ref["dtype"] == "float32" and set(FIELDS) <= set(ref)
    # Same talker weights, greedy: the official view must produce as many frames as we do.
    assert ref["frames"] == ours["frames"]
    for key in ("talker_ms", "code_predictor_ms", "decode_ms", "ms_per_frame", "rtf"):
        assert ref[key] > 0, key
    assert (tiny.with_name(tiny.name + "-official") / "speech_tokenizer" / "preprocessor_config.json").exists()


def test_reference_without_it_is_a_skip_line(tiny, tmp_path, capsys):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")  # an interpreter that cannot import the official implementation
    fake.chmod(0o755)
    out = tmp_path / "bench.json"
    assert main(["--model", str(tiny), "--frames", "2", "--runs", "1", "--floor-reps", "1", "--vs", "reference",
                 "--reference-python", str(fake), "--json", str(out)]) == 0
    reason = f"official implementation not importable: {fake} cannot import torch, transformers and qwen-tts"
    assert f"reference: skipped: {reason}" in capsys.readouterr().out
    assert json.loads(out.read_text())["skipped"] == [{"stack": "reference", "reason": reason}]


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


def test_mlx_audio_without_it_is_a_skip_line(tiny, tmp_path, capsys):
    import importlib.util
    import sys

    if importlib.util.find_spec("mlx_audio") is not None:
        pytest.skip("this interpreter has mlx-audio")
    out = tmp_path / "bench.json"
    assert main(["--model", str(tiny), "--frames", "2", "--runs", "1", "--floor-reps", "1", "--vs", "mlx-audio",
                 "--mlx-audio-python", sys.executable, "--json", str(out)]) == 0
    assert f"mlx-audio: skipped: mlx-audio is not importable by {sys.executable}" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [r["stack"] for r in data["results"]] == ["mlx_qwen3tts"]
    assert data["skipped"] == [{"stack": "mlx-audio", "reason": f"mlx-audio is not importable by {sys.executable}"}]


def test_mlx_audio_result_shape_from_a_stand_in_child(tiny, tmp_path, monkeypatch):
    # A stand-in interpreter that prints what the child would: the parent's parsing and median.
    from mlx_qwen3tts.bench import mlx_audio as bench_mlx_audio, reference as bench_reference

    run = {"frames": 4, "audio_seconds": 0.32, "first_chunk_s": 1.0, "rtf": 3.0, "prefill_s": 0.2,
           "talker_code_predictor_ms": 100.0, "decode_ms": 10.0, "ms_per_frame": 110.0, "peak_memory_mb": 5.0,
           **dict.fromkeys(bench_mlx_audio.NULLS)}
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho 'noise'\necho '{bench_mlx_audio.MARK}{json.dumps([run, run])}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bench_reference, "official_view", lambda folder, python=None: folder)
    ours = {"kind": "custom_voice", "size": "0b6", "speaker": "vivian", "instruct": None}
    result, runs = bench_mlx_audio.benchmark_mlx_audio(tiny, "float32", ours, "Hi.", 4, 2, str(fake))
    assert len(runs) == 2 and set(FIELDS) <= set(result)
    assert result["stack"] == "mlx-audio" and result["dtype"] == "float32" and result["ms_per_frame"] == 110.0
    assert result["talker_ms"] is None and result["kernel_floor_ms"] is None
    fake.write_text("#!/bin/sh\necho 'boom' >&2\nexit 3\n")
    with pytest.raises(RuntimeError, match="exit 3"):
        bench_mlx_audio.benchmark_mlx_audio(tiny, "float32", ours, "Hi.", 4, 2, str(fake))


def test_reference_child_keeps_torch_on_its_own_blas(monkeypatch):
    from mlx_qwen3tts.bench.reference import child_env

    monkeypatch.setenv("LD_PRELOAD", "/c/libmlx_qwen3tts_gemv-1.so /usr/lib/libopenblas.so.0 /opt/libother.so")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "SkylakeX")
    env = child_env()
    assert env["LD_PRELOAD"] == "/opt/libother.so" and "OPENBLAS_CORETYPE" not in env
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libopenblas.so.0")
    assert "LD_PRELOAD" not in child_env()


def test_mlx_audio_child_runs_without_our_forwarder(monkeypatch):
    from mlx_qwen3tts.bench.mlx_audio import peer_env

    monkeypatch.setenv("LD_PRELOAD", "/c/libmlx_qwen3tts_gemv-1.so /usr/lib/libopenblas.so.0")
    assert peer_env()["LD_PRELOAD"] == "/usr/lib/libopenblas.so.0"
    assert peer_env(forwarder=True)["LD_PRELOAD"] == "/c/libmlx_qwen3tts_gemv-1.so /usr/lib/libopenblas.so.0"


def test_the_mlx_audio_child_imports_the_real_mlx_audio(tmp_path):
    """The child runs as a script from the bench folder, beside a file named mlx_audio.py."""
    import subprocess
    import sys

    from mlx_qwen3tts.bench import mlx_audio as bench_mlx_audio

    stub = tmp_path / "mlx_audio" / "tts"
    stub.mkdir(parents=True)
    (tmp_path / "mlx_audio" / "__init__.py").write_text("")
    (stub / "__init__.py").write_text("")
    (stub / "utils.py").write_text("def load_model(path):\n    raise SystemExit('stand-in mlx_audio reached')\n")
    child = subprocess.run([sys.executable, bench_mlx_audio.__file__, "--child", json.dumps({"model": "x"})],
                           env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                           timeout=120)
    assert "stand-in mlx_audio reached" in child.stderr, child.stderr[-2000:]


def test_bench_batch_prints_the_figures_per_size(tiny, tmp_path, capsys):
    out = tmp_path / "batch.json"
    assert main(["--model", str(tiny), "--dtype", "float32", "--batch", "1", "2", "--batch-frames", "4", "--runs", "1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "joining an idle engine" in text and "single-stream loop" in text
    assert "the running streams' longest wait for a frame meanwhile" in text
    batch = json.loads(out.read_text())["results"][0]["batch"]
    sizes = batch["sizes"]
    assert sorted(sizes) == ["1", "2"] and sizes["1"]["speedup"] == 1.0 and sizes["2"]["frames_per_s"] > 0
    assert batch["runners_longest_wait_s"] > 0 and batch["first_frame_full_s"] > 0


def test_small_m_paths_compute_the_same_products():
    from mlx_qwen3tts.bench.small_m import measure, paths

    if "small_m" not in paths():
        pytest.skip("no C compiler here: the small-M kernel is optional")
    result = measure([1, 3, 5], matrices=2, n=96, k=40, rounds=1)  # raises on a wrong product
    assert set(result["small_m"]) == {1, 3, 5}
