"""The test process's side of the official implementation: one child per test session.

The child (serve.py) runs in the official implementation's own venv (venv.py), so torch,
transformers 4.57 and qwen-tts never enter the environment our package is tested in. It starts
on first use (importing torch costs seconds) and stays up until the session ends; requests and
answers are JSON lines over pipes, arrays .npz files in a private folder.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import selectors
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .venv import CACHE, HERE, reference_python

START_TIMEOUT_S = 300
CALL_TIMEOUT_S = 900


class OfficialError(RuntimeError):
    """The official implementation failed a request (its traceback is the message)."""


def child_env() -> dict:
    """The child keeps torch on its own BLAS: the OpenBLAS our tests preload (and the sgemv
    forwarder in front of it) would take over torch's matmuls too."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    kept = [p for p in env.pop("LD_PRELOAD", "").split() if "libopenblas" not in p and "libmlx_qwen3tts" not in p]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    for name in ("OPENBLAS_CORETYPE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


class Official:
    """A running child of the official implementation; `call` sends one request and waits."""

    def __init__(self, python: Path):
        self.folder = Path(tempfile.mkdtemp(prefix="official-"))
        CACHE.mkdir(parents=True, exist_ok=True)
        self.log_path = CACHE / "official-child.log"
        self._log = open(self.log_path, "w")
        self._ids = itertools.count()
        self.proc = subprocess.Popen([str(python), str(HERE / "serve.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=child_env(), text=True)
        self._read(START_TIMEOUT_S, "starting")

    def _read(self, timeout: float, what: str) -> dict:
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            tail = "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-20:])
            cause = f"no answer in {timeout:.0f} s" if not ready else f"it exited ({self.proc.returncode})"
            raise OfficialError(f"the official implementation's child, {what}: {cause}; its log "
                                f"({self.log_path}) ends with:\n{tail}")
        return json.loads(line)

    def call(self, op: str, arrays: dict[str, np.ndarray] | None = None, **args) -> tuple[dict, dict[str, np.ndarray]]:
        """Runs `op` in the child: (values, arrays) of its answer."""
        if self.proc.poll() is not None:
            raise OfficialError(f"the official implementation's child has exited; see {self.log_path}")
        n = next(self._ids)
        request = {"op": op, "args": args, "arrays": None, "out": str(self.folder / f"{n}-out.npz")}
        if arrays:
            request["arrays"] = str(self.folder / f"{n}-in.npz")
            np.savez(request["arrays"], **arrays)
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self._read(CALL_TIMEOUT_S, f"answering {op}")
        if not reply["ok"]:
            raise OfficialError(f"the official implementation failed {op}:\n{reply['error']}")
        out = {}
        if reply["arrays"]:
            with np.load(reply["arrays"]) as npz:
                out = {k: npz[k] for k in npz.files}
            os.unlink(reply["arrays"])
        return reply["values"], out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_child: Official | None = None


def official(say: Callable[[str], None] = print) -> Official:
    """The session's child, started (and its venv built) on first use."""
    global _child
    if _child is None or _child.proc.poll() is not None:
        _child = Official(reference_python(say))
        atexit.register(_child.close)
    return _child


def close() -> None:
    global _child
    if _child is not None:
        _child.close()
        _child = None
