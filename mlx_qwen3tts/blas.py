"""Linux only: MLX's CPU wheel bundles a slow reference BLAS; the system OpenBLAS is ~30x faster.

A second trap: an OpenBLAS older than the CPU (Debian 12 ships 0.3.21) does not recognise a
new Xeon and falls back to its generic SSE3 kernels, 3-4x slower than the AVX-512 ones it has.
`OPENBLAS_CORETYPE` picks the right kernels; it is read when the library loads.

The CLI re-executes itself with both fixed; the library warns once with the fix.
macOS (Accelerate / Metal) needs none of this.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

_REEXEC_MARK = "MLX_QWEN3TTS_BLAS_CHECKED"
_warned = False

# OpenBLAS core names with AVX-512 (or better) kernels, and with AVX2 kernels.
_AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
_AVX2_CORES = _AVX512_CORES | {"haswell", "zen"}


def _openblas_path() -> str | None:
    """The OpenBLAS mapped into this process, if any."""
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            if "libopenblas" in line:
                return line.split()[-1]
    except OSError:
        pass
    return None


def openblas_loaded() -> bool:
    """Whether an OpenBLAS is mapped into this process."""
    return _openblas_path() is not None


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


def openblas_core(path: str | None = None) -> str | None:
    """The kernel set OpenBLAS chose (e.g. 'SkylakeX', or 'Prescott' when it did not know the CPU)."""
    path = path or _openblas_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def better_core(core: str | None, flags: set[str]) -> str | None:
    """The `OPENBLAS_CORETYPE` to force when OpenBLAS chose kernels below what the CPU runs; else None."""
    if core is None:
        return None
    name = core.lower()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags and name not in _AVX512_CORES:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags and name not in _AVX2_CORES:
        return "Haswell"
    return None


def _needed_core(path: str | None) -> str | None:
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None  # the user's choice stands
    return better_core(openblas_core(path), cpu_flags())


def slow_blas() -> bool:
    return sys.platform.startswith("linux") and not openblas_loaded()


def warn_if_slow() -> None:
    """Logs the fix once per process when MLX runs on the bundled BLAS or on generic kernels."""
    global _warned
    if _warned or not sys.platform.startswith("linux"):
        return
    if slow_blas():
        _warned = True
        logger.warning("MLX is using its bundled BLAS, about 30x slower on this CPU. Install OpenBLAS "
                       "(apt-get install libopenblas0-pthread) and run with "
                       "LD_PRELOAD=$(ldconfig -p | awk '/libopenblas\\.so\\.0 /{print $NF; exit}')")
    elif core := _needed_core(None):
        _warned = True
        logger.warning("OpenBLAS did not recognise this CPU and runs its generic kernels (%s), about 3x "
                       "slower; run with OPENBLAS_CORETYPE=%s", openblas_core(), core)


def reexec_with_openblas(argv: list[str]) -> None:
    """Restarts Python with `argv` (e.g. ["-m", "pkg.cli", ...]), OpenBLAS preloaded and its
    kernels chosen for this CPU, when that helps and is possible.

    Returns normally (changing nothing) on macOS, when nothing needs fixing or OpenBLAS is
    missing, or when this process is itself the restarted one.
    """
    if not sys.platform.startswith("linux") or os.environ.get(_REEXEC_MARK):
        return
    loaded = _openblas_path()
    path = loaded or find_openblas()
    if path is None:
        warn_if_slow()
        return
    core = _needed_core(path)
    if loaded and core is None:
        return
    env = dict(os.environ)
    env[_REEXEC_MARK] = "1"
    if not loaded:
        env["LD_PRELOAD"] = " ".join(p for p in (path, env.get("LD_PRELOAD", "")) if p)
    if core:
        env["OPENBLAS_CORETYPE"] = core
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


if __name__ == "__main__":
    # For shell scripts: OPENBLAS_CORETYPE=$(python -m mlx_qwen3tts.blas) prints what to force, if anything.
    print(_needed_core(find_openblas()) or "")
