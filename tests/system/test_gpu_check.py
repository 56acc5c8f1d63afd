"""`python -m mlx_qwen3tts.bench.gpu_check`: the script a Mac user runs, here on whatever device there is.

On a machine without an MLX GPU its GPU parts must say so and skip, while the rest is measured;
its measurement functions themselves also run here, with the CPU standing in for the GPU
(each branch still runs: the native ops against the CPU rewrites).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

import mlx_qwen3tts
from mlx_qwen3tts.bench import gpu_parts
from mlx_qwen3tts.testing import make_checkpoint
from mlx_qwen3tts.bench.gpu_check import GPU_PARTS, PARTS, has_gpu
from mlx_qwen3tts.rtf import frame_bytes

ROOT = Path(__file__).resolve().parents[2]


def gpu_check(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "gpu_check.json"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mlx_qwen3tts.bench.gpu_check", "--out", str(out),
                           "--checkpoints", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    return (tmp, *gpu_check(tmp, "--quick"))


def test_quick_mode_reports_every_part(quick):
    tmp, data, stdout = quick
    assert data["mode"] == "quick" and list(data["parts"]) == list(PARTS)
    parts = data["parts"]
    machine = parts["machine"]
    assert machine["status"] == "ok" and machine["mlx"] == mx.__version__ and machine["cpu"]
    for name in GPU_PARTS:
        if has_gpu():
            assert parts[name]["status"] == "ok", parts[name]
        else:
            assert parts[name] == {"status": "skipped", "seconds": parts[name]["seconds"],
                                   "reason": parts[name]["reason"]}
            assert parts[name]["reason"].startswith("no GPU")
    assert parts["xvector"]["status"] == "skipped" and "--base-model" in parts["xvector"]["reason"]
    assert (tmp / "gpu_check.txt").read_text().startswith("mlx_qwen3tts gpu_check (quick)")
    assert "please send both files back" in stdout


def test_quick_mode_measures_the_cpu_parts(quick):
    tmp, data, _ = quick
    bf16 = data["parts"]["bf16_vs_float32"]
    assert bf16["status"] == "ok" and bf16["frames"] == 8
    for side in ("talker", "code_predictor"):
        assert bf16[side]["kl"] >= 0 and 0 <= bf16[side]["top1"] <= 1
    bench = data["parts"]["bench"]
    assert bench["status"] == "ok" and [r["config"] for r in bench["runs"]] == ["stored", "8bit"]
    tts = mlx_qwen3tts.load(tmp / "tiny-custom_voice")
    stored, eight = bench["runs"]
    for run in bench["runs"]:
        assert run["status"] == "ok", run
        assert run["cold_first_audio_s"] > 0 and run["warm_first_audio_s"] > 0
        assert run["median"]["talker_code_predictor_ms"] > 0
        assert run["device_report"]["loop_ms"] == run["median"]["talker_code_predictor_ms"]
        assert run["device_report_text"].startswith("device report: tiny-custom_voice")
    assert stored["quantization"] is None and eight["quantization"] == "8bit"
    # Counted in the child from the loaded model: the same as counting it here.
    assert stored["device_report"]["frame_bytes"] == frame_bytes(tts.model)
    assert eight["device_report"]["frame_bytes"] < stored["device_report"]["frame_bytes"]


def test_a_failing_part_is_recorded_and_the_rest_still_run(tmp_path):
    data, stdout = gpu_check(tmp_path, "--quick", "--model", str(tmp_path / "missing"))
    parts = data["parts"]
    assert parts["machine"]["status"] == "ok"
    for name in ["bf16_vs_float32"] + ([*GPU_PARTS] if has_gpu() else []):
        assert parts[name]["status"] == "error" and "missing" in parts[name]["error"], parts[name]
    assert parts["bench"]["status"] == "error"
    assert [r["status"] for r in parts["bench"]["runs"]] == ["error", "error"]
    assert "missing" in parts["bench"]["runs"][0]["error"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_checkpoint("tiny", "custom_voice", tmp_path_factory.mktemp("ckpt") / "tiny"))


def test_gpu_parts_run_with_the_cpu_standing_in(tiny):
    decoder = gpu_parts.codec_decoder(tiny, mx.cpu, 7)
    for key in ("gpu_vs_cpu_whole", "gpu_vs_cpu_streamed", "gpu_streamed_vs_whole", "gpu_rewrites_vs_gpu_whole"):
        assert decoder[key]["max_abs_diff"] < 1e-5 and decoder[key]["ref_max_abs"] > 0, key
    assert all(v > 0 for v in decoder["ms_per_frame"].values())
    convs = gpu_parts.conv1d(tiny, mx.cpu)
    branches = {r["cpu_branch"] for r in convs["layers"]}
    assert {"taps", "depthwise", "matmul"} <= branches
    assert convs["worst_gpu_native_vs_cpu"] < 1e-4
    snake = gpu_parts.snake(mx.cpu)
    assert snake["max_argument"] > 50
    assert snake["gpu_fused_vs_float64"]["max_abs_diff"] < 1e-3
    assert snake["cpu_polynomial_vs_float64"]["max_abs_diff"] < 1e-3
    frame = gpu_parts.compiled_frame(tiny, 6)
    for mode in ("greedy", "sampled"):
        assert frame[mode]["identical"] and frame[mode]["frames_lean"] > 0, frame


def test_every_bench_configuration_runs(tiny):
    from mlx_qwen3tts.bench.gpu_check import FULL_CONFIGS, bench_one

    sizes = {}
    for label, quant in FULL_CONFIGS:
        run = bench_one(tiny, quant, 3, 1, 1)
        assert run["quantization"] == quant and run["median"]["frames"] >= 1, label
        sizes[label] = run["device_report"]["frame_bytes"]
    assert sizes["4bit-all"] < sizes["8bit"] < sizes["stored"]


def write_tiny_base(folder: Path, custom_voice: str) -> Path:
    """A tiny Base checkpoint: the tiny CustomVoice folder with a Base model (speaker encoder
    included, in MLX layout, which loading reads off its kernel sizes)."""
    import shutil

    from mlx.utils import tree_flatten

    from mlx_qwen3tts.testing import model_config
    from mlx_qwen3tts.config import ModelConfig
    from mlx_qwen3tts.models.qwen3_tts import Model

    shutil.copytree(custom_voice, folder)
    raw = model_config("tiny", "base", "0b6")
    model = Model(ModelConfig.from_dict(raw))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "mlx"})
    (folder / "config.json").write_text(json.dumps(raw))
    return folder


def test_xvector_part_with_the_cpu_standing_in(tiny, tmp_path):
    base = write_tiny_base(tmp_path / "base", tiny)
    out = gpu_parts.xvector(str(base), None, mx.cpu, [5.0])
    row = out["5s"]
    # Both loads keep the speaker encoder in float32; bfloat16 rounds its weights once on the way.
    assert 0.999 < row["bfloat16_vs_float32"] <= 1 + 1e-6
    assert row["gpu_vs_cpu_float32"] > 0.99999
    cpu_only = gpu_parts.xvector(str(base), None, None, [5.0])
    assert set(cpu_only["5s"]) == {"bfloat16_vs_float32"} and cpu_only["device"] == "cpu"


def test_an_already_quantized_model_is_benched_only_as_it_is(tiny, tmp_path):
    from mlx_qwen3tts.bench.gpu_check import bench_one
    from mlx_qwen3tts.convert_checkpoint import convert

    folder = convert(tiny, tmp_path / "q8", quantize=True)
    assert bench_one(str(folder), "mixed", 3, 1, 1) == {"status": "skipped", "reason": f"{folder} is already quantized"}
    assert bench_one(str(folder), None, 3, 1, 1)["quantization"] is None


@pytest.mark.parametrize("body, expected", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "its process ended (SIGKILL) before writing a result"),
    ("import sys, time; print('stuck', file=sys.stderr, flush=True); time.sleep(600)", "timed out after 5 s"),
])
def test_a_crashed_or_hung_part_is_an_error_entry(tmp_path, monkeypatch, body, expected):
    from mlx_qwen3tts.bench import gpu_check

    (tmp_path / "stand_in_part.py").write_text(body + "\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{ROOT}")
    monkeypatch.setattr(gpu_check, "MODULE", "stand_in_part")
    work = tmp_path / "work"
    work.mkdir()
    result = gpu_check.run_part({"part": "bench"}, 5 if "sleep" in body else 60, work)
    assert result["status"] == "error" and result["error"].startswith(expected), result
    if "sleep" in body:
        assert "stuck" in result["stderr_tail"]
