"""Linux only: MLX's CPU wheel bundles a slow reference BLAS; the system OpenBLAS is ~30x faster.

A second trap: an OpenBLAS older than the CPU (Debian 12 ships 0.3.21) does not recognise a
new Xeon and falls back to its generic SSE3 kernels, 3-4x slower than the AVX-512 ones it has.
`OPENBLAS_CORETYPE` picks the right kernels; it is read when the library loads.

A third: MLX sends matrix-vector products (every generated token's) to sgemm, which OpenBLAS
before 0.3.28 runs at half the speed of sgemv. `gemv_forward.c`, built once with the system C
compiler and preloaded ahead of OpenBLAS, forwards them to sgemv; and products of a few rows
(a batch of streams) to `small_m.c`, which reads the weights once for all rows.

A command started from the command line restarts itself with all three fixed (once, before it
loads anything; `MLX_QWEN3TTS_NO_RESTART=1` turns that off); the library warns once with the fix.
macOS (Accelerate / Metal) needs none of this.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_REEXEC_MARK = "MLX_QWEN3TTS_BLAS_CHECKED"
_NO_RESTART = "MLX_QWEN3TTS_NO_RESTART"  # set to 1: a command never restarts itself
_NO_FORWARD = "MLX_QWEN3TTS_NO_GEMV_FORWARD"  # set to 1 to leave sgemm calls alone
_SHIM_SOURCE = Path(__file__).with_name("gemv_forward.c")
_SHIM_SOURCES = (_SHIM_SOURCE, Path(__file__).with_name("small_m.c"))
_checked = False

# OpenBLAS core names with AVX-512 (or better) kernels, and with AVX2 kernels.
_AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
_AVX2_CORES = _AVX512_CORES | {"haswell", "zen"}


def _mapped(name: str) -> str | None:
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            if name in line:
                return line.split()[-1]
    except OSError:
        pass
    return None


def _openblas_path() -> str | None:
    """The OpenBLAS mapped into this process, if any."""
    return _mapped("libopenblas")


def gemv_forward_loaded() -> bool:
    return _mapped("libmlx_qwen3tts_gemv") is not None


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def gemv_forward_library(cache: Path | None = None) -> str | None:
    """`gemv_forward.c` built for this machine (once, then cached); None without a C compiler."""
    if os.environ.get(_NO_FORWARD) or not all(p.exists() for p in _SHIM_SOURCES):
        return None
    source = b"".join(p.read_bytes() for p in _SHIM_SOURCES)
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlx-qwen3tts"
    lib = cache / f"libmlx_qwen3tts_gemv-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if lib.exists():
        return str(lib)
    cc = _compiler()
    if cc is None:
        return None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            out = Path(tmp) / lib.name
            # No -ffast-math: the small-M kernel's sums must keep their order. Its helpers are pthreads.
            subprocess.run([cc, "-O3", "-pthread", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(out),
                            *map(str, _SHIM_SOURCES), "-ldl"], check=True, capture_output=True, timeout=60)
            out.replace(lib)  # atomic: a concurrent build cannot leave half a library behind
    except (OSError, subprocess.SubprocessError) as e:
        logger.debug("could not build the sgemv forwarder: %s", e)
        return None
    return str(lib)


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
    """Logs the fix once per process when MLX runs on the bundled BLAS, on generic kernels, or
    without the sgemv forwarder."""
    global _checked
    if _checked or not sys.platform.startswith("linux"):
        return
    _checked = True  # the libraries mapped into a process do not change: one look is enough
    if slow_blas():
        logger.warning("MLX is using its bundled BLAS, about 30x slower on this CPU. Install OpenBLAS "
                       "(apt-get install libopenblas0-pthread) and run with "
                       "LD_PRELOAD=$(ldconfig -p | awk '/libopenblas\\.so\\.0 /{print $NF; exit}')")
    elif core := _needed_core(None):
        logger.warning("OpenBLAS did not recognise this CPU and runs its generic kernels (%s), about 3x "
                       "slower; run with OPENBLAS_CORETYPE=%s", openblas_core(), core)
    elif not gemv_forward_loaded() and not os.environ.get(_NO_FORWARD) and _compiler() is not None:
        logger.warning("generation runs about 2x faster on this CPU with the sgemv forwarder: start "
                       "Python after eval \"$(python -m mlx_qwen3tts.blas)\" (%s=1 silences this)", _NO_FORWARD)


def fixed_env(environ: dict | None = None) -> dict | None:
    """`environ` (default: this process's) with the fast BLAS set up as this process would need
    it: the sgemv forwarder and OpenBLAS preloaded, the kernels chosen. None without an OpenBLAS."""
    env = dict(os.environ if environ is None else environ)
    loaded = _openblas_path()
    path = loaded or find_openblas()
    if path is None:
        return None
    preload = env.get("LD_PRELOAD", "").split()
    if not loaded:
        preload.insert(0, path)
    shim = None if gemv_forward_loaded() else gemv_forward_library()
    if shim:
        preload.insert(0, shim)  # ahead of OpenBLAS, so that MLX's sgemm calls reach it first
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    if core := _needed_core(path):
        env["OPENBLAS_CORETYPE"] = core
    return env


def reexec_with_openblas(argv: list[str]) -> None:
    """Restarts Python with `argv` (e.g. ["-m", "pkg.cli", ...]) in `fixed_env()`, when that
    changes anything and is possible.

    Returns normally (changing nothing) on macOS, when nothing needs fixing or OpenBLAS is
    missing, or when this process is itself the restarted one.
    """
    if not sys.platform.startswith("linux") or os.environ.get(_REEXEC_MARK):
        return
    env = fixed_env()
    if env is None:
        warn_if_slow()
        return
    if env == dict(os.environ):
        return
    env[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def _our_command_line(argv: list[str]) -> bool:
    """Whether the interpreter was started as one of this package's commands: `python -m
    mlx_qwen3tts...`, an `mlx-qwen3tts-*` console script or the repository's `convert.py`. Anything
    else (a test runner, a program of the user's) is never restarted."""
    if len(argv) >= 3 and argv[1] == "-m":
        return argv[2] == "mlx_qwen3tts" or argv[2].startswith("mlx_qwen3tts.")
    return len(argv) >= 2 and Path(argv[1]).name.startswith(("mlx-qwen3tts", "convert.py"))


def restart_command_line() -> None:
    """Restarts this command line with the fast BLAS when it is one of this package's commands
    (see `reexec_with_openblas`); otherwise, or with MLX_QWEN3TTS_NO_RESTART=1, does nothing."""
    argv = list(getattr(sys, "orig_argv", []))
    if os.environ.get(_NO_RESTART) or not _our_command_line(argv):
        return
    reexec_with_openblas(argv[1:])
