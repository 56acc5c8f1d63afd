"""The official PyTorch implementation (`qwen-tts`) timed on the benchmark's checkpoint.

The official loader needs the talker's MRoPE settings in `config.json` and a speech tokenizer
in its own layout. A folder made by `--make-checkpoint` has neither (its codec is stored in
MLX layout), so the reference runs on an *official view* of it: the same talker weights and
tokenizer files (linked), the config completed, and a codec of the same shapes written by
the official classes with random weights. Decode cost depends on shapes only, so the
figures compare like with like. The official implementation pins libraries of its own
(transformers 4.57), so it runs under its own interpreter (`--reference-python`, a venv with
torch and qwen-tts; by default this one, if it has them), in a process of its own with
PyTorch's own BLAS (`child_env`); `reference_child.py` is that child.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

from .reference_child import MARK

CHILD = Path(__file__).resolve().with_name("reference_child.py")
LINKED = ("model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json", "generation_config.json")
_PROBE = "import importlib.util, torch, transformers; assert importlib.util.find_spec('qwen_tts')"


def find_reference_python(python: str | None = None) -> str:
    """The interpreter to run the official implementation with: `python`, else this one; raises
    ImportError with the reason when it cannot import torch, transformers and qwen-tts."""
    exe = (shutil.which(python) or python) if python else sys.executable
    try:
        probe = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, env=child_env(),
                               stdin=subprocess.DEVNULL)
    except OSError as e:
        raise ImportError(f"cannot run {exe}: {e.strerror}") from None
    if probe.returncode:
        hint = "" if python else " (name a venv that has them with --reference-python)"
        raise ImportError(f"{exe} cannot import torch, transformers and qwen-tts{hint}")
    return exe


def is_official(folder: Path) -> bool:
    talker = json.loads((folder / "config.json").read_text()).get("talker_config", {})
    return "rope_scaling" in talker and (folder / "speech_tokenizer" / "preprocessor_config.json").exists()


def official_view(folder: Path, python: str | None = None) -> Path:
    """`folder` itself when the official loader takes it, else its official view (made once; its
    codec is written by the official classes under `python`, see `find_reference_python`)."""
    folder = Path(folder)
    if is_official(folder):
        return folder
    view = folder.with_name(folder.name + "-official")
    codec = view / "speech_tokenizer"
    if (view / "config.json").exists() and (codec / "preprocessor_config.json").exists():
        return view
    logger.info("writing an official-layout view of %s to %s", folder, view)
    view.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        if (folder / name).exists() and not (view / name).exists():
            (view / name).symlink_to((folder / name).resolve())
    if not (codec / "preprocessor_config.json").exists():
        shutil.rmtree(codec, ignore_errors=True)
        try:
            exe = find_reference_python(python)
        except ImportError as e:
            raise RuntimeError(f"the official view's codec is written by the official implementation: {e}") from None
        proc = subprocess.run([exe, str(CHILD), "--write-codec", str(folder / "speech_tokenizer"), str(codec)],
                              capture_output=True, text=True, env=child_env(), stdin=subprocess.DEVNULL)
        if proc.returncode:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"writing the official view's codec failed (exit {proc.returncode}): {tail[0]}")
    config = json.loads((folder / "config.json").read_text())
    talker = config["talker_config"]
    half = talker["head_dim"] // 2
    side = half * 20 // 64
    talker.setdefault("rope_scaling", {"interleaved": True, "mrope_section": [half - 2 * side, side, side],
                                       "rope_type": "default"})
    talker.setdefault("hidden_act", "silu")
    talker.setdefault("position_id_per_seconds", 13)
    config.setdefault("assistant_token_id", 77091)
    config.setdefault("architectures", ["Qwen3TTSForConditionalGeneration"])
    (view / "config.json").write_text(json.dumps(config, indent=2))  # last: marks the view complete
    return view


def child_env() -> dict:
    """The environment for the reference's process: PyTorch keeps its own BLAS (MKL on x86).

    A preloaded OpenBLAS would take over torch's matmuls too (3-8x slower here), so it is left
    out, with the sgemv forwarder that sits in front of it.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    kept = [p for p in env.pop("LD_PRELOAD", "").split() if "libopenblas" not in p and "libmlx_qwen3tts" not in p]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    env.pop("OPENBLAS_CORETYPE", None)
    return env


def benchmark_reference(model: Path, dtype: str, ours: dict, text: str, frames: int, runs: int,
                        python: str | None = None) -> tuple[dict, list[dict]]:
    """The median of `runs` reference runs after a short warm-up, on the official view of `model`,
    in a process of its own under `python` (see `find_reference_python` and `child_env`)."""
    exe = find_reference_python(python)
    view = official_view(model, exe)
    args = {"view": str(view), "dtype": dtype, "kind": ours["kind"], "text": text, "speaker": ours["speaker"],
            "instruct": ours["instruct"], "frames": frames, "runs": runs}
    return run_peer("reference", [exe, str(CHILD)], child_env(), MARK, args, view, ours)


def median_of(results: list[dict]) -> dict:
    """Per key, the median over runs (None where any run has None)."""
    return {k: None if any(r[k] is None for r in results) else statistics.median(r[k] for r in results)
            for k in results[0]}


def run_child(stack: str, command: list[str], env: dict, mark: str, args: dict) -> list[dict]:
    """Runs `command --child ARGS` and reads back the run list it prints after `mark`."""
    proc = subprocess.run([*command, "--child", json.dumps(args)], capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(mark)]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{stack} run failed (exit {proc.returncode}): {tail[0]}")
    return json.loads(lines[-1][len(mark):])


def run_peer(stack: str, command: list[str], env: dict, mark: str, args: dict, view: Path,
             ours: dict) -> tuple[dict, list[dict]]:
    """`run_child`, with the runs' median as a result row beside ours; returns it and the runs."""
    results = run_child(stack, command, env, mark, args)
    return {"stack": stack, "model": str(view), "kind": ours["kind"], "size": ours["size"], "dtype": args["dtype"],
            "quantization": None, "frames_requested": args["frames"], "runs": args["runs"],
            **median_of(results)}, results
