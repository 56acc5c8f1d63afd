"""`python -m mlx_qwen3tts.bench.gpu_check`: the numbers only a machine with an MLX GPU can give.

    python -m mlx_qwen3tts.bench.gpu_check --quick          # tiny random checkpoints, about a minute
    python -m mlx_qwen3tts.bench.gpu_check                  # real-size random 0.6B and 1.7B (writes ~7 GB once)
    python -m mlx_qwen3tts.bench.gpu_check --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --base-model PATH

Writes gpu_check.json (send it back) and gpu_check.txt (a summary). Each part runs in a fresh
process with a timeout, so a crash or a hang costs that part only; the JSON is rewritten after
every part. Parts: the machine; the codec decoder, its convolutions and SnakeBeta on the GPU
against their CPU forms; the compiled code-predictor frame against the plain loop; bfloat16
against float32; x-vectors (with --base-model); and the benchmark per size and quantization,
with cold first audio (a fresh process: Metal compiles its kernels) and warm (the second
request). Without a GPU the GPU parts are skipped with the reason and the rest still runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import mlx.core as mx

MODULE = "mlx_qwen3tts.bench.gpu_check"
_RESULTS = itertools.count()  # names the children's result files
GPU_PARTS = ("codec_decoder", "conv1d", "snake", "compiled_frame")
PARTS = ("machine", *GPU_PARTS, "bf16_vs_float32", "xvector", "bench")
# (label, in-memory quantization): the convert recipes, and every talker Linear at 4 bits.
QUICK_CONFIGS = (("stored", None), ("8bit", "8bit"))
FULL_CONFIGS = (("stored", None), ("8bit", "8bit"), ("mixed", "mixed"), ("4bit-all", "4bit-all"))


def has_gpu() -> bool:
    return mx.is_available(mx.gpu)


def device_name() -> str:
    """The default device, as "gpu" or "cpu"."""
    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def no_gpu_reason() -> str:
    return f"no GPU: MLX {mx.__version__} has no GPU backend on this machine (mx.is_available(mx.gpu) is False)"


def _command(*args: str) -> str | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    """Chip, memory, OS and MLX versions, and what MLX reports about each device."""
    from .. import __version__

    darwin = sys.platform == "darwin"
    gpu = has_gpu()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    backend = "metal" if mx.metal.is_available() else "cuda" if gpu else None
    chip = _command("sysctl", "-n", "machdep.cpu.brand_string") if darwin else None
    return {"chip": chip or mx.device_info(mx.cpu).get("device_name") or platform.processor() or None,
            "memory_bytes": memory, "platform": platform.platform(), "macos": platform.mac_ver()[0] or None,
            "python": platform.python_version(), "mlx": mx.__version__, "mlx_qwen3tts": __version__,
            "commit": _command("git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"),
            "gpu_backend": backend, "gpu": mx.device_info(mx.gpu) if gpu else None, "cpu": mx.device_info(mx.cpu)}


def bench_one(model: str, quant: str | None, frames: int, runs: int, floor_reps: int) -> dict:
    """One configuration in a fresh process: load, cold and warm first audio, the benchmark, the device report."""
    from ..loading import load
    from ..quantize import DEFAULT_GROUP_SIZE, quantize_model
    from ..rtf import SIZES, figures, report, talker_bits
    from .one_stream import DEFAULT_TEXT, benchmark, quantize, request_kwargs

    start = time.perf_counter()
    tts = load(model)
    if quant and talker_bits(tts.model) is not None:
        return {"status": "skipped", "reason": f"{model} is already quantized"}
    if quant == "4bit-all":
        quantize(tts, 4)
    elif quant:
        quantize_model(tts.model, quant, DEFAULT_GROUP_SIZE)
        mx.eval(tts.model.parameters())
    load_s = time.perf_counter() - start
    first = []
    for _ in range(2):  # the first request compiles every kernel it meets; the second finds them
        start, at = time.perf_counter(), None
        for _chunk in tts.stream(DEFAULT_TEXT, **request_kwargs(tts, min(frames, 10))):
            at = at or time.perf_counter() - start
        first.append(at)
    median = benchmark(tts, frames=frames, runs=runs, floor_reps=floor_reps)["median"]
    fig = figures(tts, median["talker_code_predictor_ms"], median["ms_per_frame"])
    dtype = str(tts.model.talker.model.norm.weight.dtype).removeprefix("mlx.core.")
    size = SIZES.get(tts.config.tts_model_size, tts.config.tts_model_size)
    title = f"{Path(str(model)).name}: {tts.kind} {size}, {dtype}" + (f", quantized {quant}" if quant else "")
    return {"model": str(model), "kind": tts.kind, "size": size, "dtype": dtype,
            "quantization": quant, "device": device_name(), "load_s": load_s,
            "cold_first_audio_s": first[0], "warm_first_audio_s": first[1], "median": median,
            "device_report": fig, "device_report_text": report(fig, title.strip())}


def _child_part(spec: dict) -> dict:
    from . import gpu_parts as p

    part, gpu = spec["part"], mx.gpu if has_gpu() else mx.cpu
    if part == "codec_decoder":
        return p.codec_decoder(spec["checkpoint"], gpu, spec["frames"])
    if part == "conv1d":
        return p.conv1d(spec["checkpoint"], gpu)
    if part == "snake":
        return p.snake(gpu)
    if part == "compiled_frame":
        return p.compiled_frame(spec["checkpoint"], spec["frames"])
    if part == "bf16_vs_float32":
        return p.bf16_vs_float32(spec["checkpoint"], spec["prompts"], spec["frames"])
    if part == "xvector":
        return p.xvector(spec["base_model"], spec["ref_audio"], mx.gpu if has_gpu() else None, spec["seconds"])
    if part == "bench":
        return bench_one(spec["model"], spec["quant"], spec["frames"], spec["runs"], spec["floor_reps"])
    raise ValueError(f"unknown part {part!r}")


def run_child(spec: dict) -> int:
    """The child side: runs one part, writes its result (or its error) to `spec["out"]`."""
    try:
        result = {"status": "ok", **_child_part(spec)}
    except Exception as e:  # recorded, not raised: the parent reads the file either way
        result = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
    Path(spec["out"]).write_text(json.dumps(result, indent=2))
    return 0


def run_part(spec: dict, timeout: float, workdir: Path) -> dict:
    """Runs one part in a fresh interpreter; a crash, a hang or a missing result is an error entry."""
    out = workdir / f"part-{next(_RESULTS)}.json"
    start = time.perf_counter()
    argv = [sys.executable, "-m", MODULE, "--child", json.dumps(spec | {"out": str(out)})]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        rc = proc.returncode
        code = signal.Signals(-rc).name if rc < 0 and -rc in signal.valid_signals() else f"status {rc}"
        stderr, why = proc.stderr, f"its process ended ({code}) before writing a result"
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        why = f"timed out after {timeout:.0f} s (--timeout)"
    result = json.loads(out.read_text()) if out.exists() else {"status": "error", "error": why}
    if result["status"] == "error":
        result["stderr_tail"] = stderr[-3000:]
    return result | {"seconds": time.perf_counter() - start}


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlx_qwen3tts.bench.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny random checkpoints only (about a minute)")
    p.add_argument("--out", default="gpu_check.json", help="JSON to write (default gpu_check.json; the summary "
                                                           "goes next to it as .txt)")
    p.add_argument("--model", action="append", default=[], help="a real checkpoint (folder or repo id) to use "
                   "instead of the random ones; repeat for several (the first one serves the comparisons)")
    p.add_argument("--sizes", nargs="+", choices=["0.6b", "1.7b"], default=["0.6b", "1.7b"],
                   help="random checkpoint sizes to benchmark without --model (default both)")
    p.add_argument("--base-model", help="a Base checkpoint, for the x-vector comparison")
    p.add_argument("--ref-audio", help="a voice recording for the x-vector comparison (default: synthetic)")
    p.add_argument("--checkpoints", help="folder for the random checkpoints (default ~/.cache/mlx-qwen3tts/bench)")
    p.add_argument("--timeout", type=float, help="seconds per part (default 900, 300 with --quick)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return run_child(json.loads(args.child))
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the checkpoint maker says what it does
    from .gpu_plan import plan

    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        print(f"error: cannot write {out}: its folder does not exist", file=sys.stderr)
        return 1
    return plan(args, out)


if __name__ == "__main__":  # `python -m mlx_qwen3tts.bench.gpu_check`: the package's entry starts every command
    import runpy

    runpy.run_module("mlx_qwen3tts", run_name="__main__")
