"""Small-M products on this CPU: ms per row of `x @ W.T` for 1..16 rows, by path (Linux).

The same weights (8 matrices of 1024 x 12288 float32 by default, 400 MB: more than any cache)
go through each path in turn, round after round, so every path sees the same machine load:
- `small_m`: the package's kernel (`blas/small_m.c`), what MLX's products of up to 64 rows
  reach through the preloaded forwarder;
- `openblas`: OpenBLAS's own cblas_sgemm (cblas_sgemv for one row), what MLX reaches without it;
- `blis`: BLIS's cblas_sgemm, where Debian's libblis4 is installed.

    python -m mlx_qwen3tts.bench --small-m [--rows 1 2 4 8 16]
"""

from __future__ import annotations

import ctypes
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np

from ..blas import find_openblas, gemv_forward_library

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_F = ctypes.c_float
_P = ctypes.c_void_p


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _find(name: str) -> str | None:
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if name in line and "=>" in line:
            return line.split("=>", 1)[1].strip()
    return None


def _cblas(path: str) -> Callable:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    sgemm, sgemv = lib.cblas_sgemm, lib.cblas_sgemv
    sgemm.restype = sgemv.restype = None

    def product(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
        (m, k), n = x.shape, w.shape[0]
        if m == 1 and hasattr(lib, "openblas_get_corename"):  # what the forwarder does for one row
            sgemv(ROW_MAJOR, NO_TRANS, n, k, _F(1.0), _P(_ptr(w)), k, _P(_ptr(x)), 1, _F(0.0), _P(_ptr(out)), 1)
        else:
            sgemm(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, _F(1.0), _P(_ptr(x)), k, _P(_ptr(w)), k, _F(0.0),
                  _P(_ptr(out)), n)

    return product


def _small_m(path: str) -> Callable:
    fn = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL).small_m_gemm
    fn.restype = None

    def product(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
        (m, k), n = x.shape, w.shape[0]
        fn(m, n, k, _F(1.0), _P(_ptr(x)), k, _P(_ptr(w)), k, _F(0.0), _P(_ptr(out)), n)

    return product


def paths() -> dict[str, Callable]:
    """The product paths this machine has, by name."""
    found = {}
    if lib := gemv_forward_library():
        found["small_m"] = _small_m(lib)
    if lib := find_openblas():
        found["openblas"] = _cblas(lib)
    if lib := _find("libblis.so.4 "):
        found["blis"] = _cblas(lib)
    return found


def measure(rows: list[int], matrices: int = 8, n: int = 12288, k: int = 1024, rounds: int = 5) -> dict:
    """Median ms per product of all `matrices`, by path and row count; paths interleaved."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((n, k), dtype=np.float32) for _ in range(matrices)]
    found = paths()
    times: dict[str, dict[int, list[float]]] = {p: {m: [] for m in rows} for p in found}
    for _ in range(rounds):
        for m in rows:
            x = rng.standard_normal((m, k), dtype=np.float32)
            outs = {}
            for name, product in found.items():
                out = np.empty((m, n), np.float32)
                start = time.perf_counter()
                for w in weights:
                    product(x, w, out)
                times[name][m].append((time.perf_counter() - start) * 1e3)
                outs[name] = out.copy()
            ref = x @ weights[-1].T
            for name, out in outs.items():
                if not np.allclose(out, ref, rtol=1e-3, atol=1e-2):
                    raise RuntimeError(f"the {name} path computed a wrong product for {m} rows")
    return {p: {m: statistics.median(v) for m, v in by.items()} for p, by in times.items()}


def table(result: dict, rows: list[int]) -> str:
    lines = ["ms per row (ms for all rows), x @ W.T over the weights, median of the rounds:",
             "rows  " + "".join(f"{p:>22}" for p in result)]
    for m in rows:
        lines.append(f"{m:4d}  " + "".join(f"{by[m] / m:10.2f} ({by[m]:8.1f})" for by in result.values()))
    return "\n".join(lines)
