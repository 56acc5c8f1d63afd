"""Linux only: MLX's CPU wheel bundles a slow reference BLAS; the system OpenBLAS is ~30x faster.

The CLI re-executes itself with OpenBLAS preloaded; the library warns once with the fix.
macOS (Accelerate / Metal) needs none of this.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

_REEXEC_MARK = "MLX_QWEN3TTS_BLAS_CHECKED"
_warned = False


def openblas_loaded() -> bool:
    """Whether an OpenBLAS is mapped into this process."""
    try:
        return "libopenblas" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def find_openblas() -> str | None:
    """The system's libopenblas.so.0, as the dynamic linker knows it."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if "libopenblas.so.0 " in line and "=>" in line:
            return line.split("=>", 1)[1].strip()
    return None


def slow_blas() -> bool:
    return sys.platform.startswith("linux") and not openblas_loaded()


def warn_if_slow() -> None:
    """Logs the fix once per process when MLX runs on the bundled BLAS."""
    global _warned
    if _warned or not slow_blas():
        return
    _warned = True
    logger.warning("MLX is using its bundled BLAS, about 30x slower on this CPU. Install OpenBLAS "
                   "(apt-get install libopenblas0-pthread) and run with "
                   "LD_PRELOAD=$(ldconfig -p | awk '/libopenblas\\.so\\.0 /{print $NF; exit}')")


def reexec_with_openblas(argv: list[str]) -> None:
    """Restarts Python with `argv` (e.g. ["-m", "pkg.cli", ...]) and OpenBLAS preloaded, when that
    helps and is possible.

    Returns normally (changing nothing) on macOS, when OpenBLAS is already loaded or missing,
    or when this process is itself the restarted one.
    """
    if not slow_blas() or os.environ.get(_REEXEC_MARK):
        return
    path = find_openblas()
    if path is None:
        warn_if_slow()
        return
    env = dict(os.environ)
    env[_REEXEC_MARK] = "1"
    env["LD_PRELOAD"] = " ".join(p for p in (path, env.get("LD_PRELOAD", "")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)
