"""The small-M kernel: right products, and each row's result the same whatever rows come with it."""

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from mlx_qwen3tts import blas

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the forwarder is for Linux's OpenBLAS")
F, P = ctypes.c_float, ctypes.c_void_p


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = blas.gemv_forward_library(tmp_path_factory.mktemp("cache"))
    if lib is None:
        pytest.skip("no C compiler here: the forwarder is optional")
    return lib


def product(lib: str, x: np.ndarray, w: np.ndarray, beta: float = 0.0, c: np.ndarray | None = None) -> np.ndarray:
    fn = ctypes.CDLL(lib).small_m_gemm
    fn.restype = None
    (m, k), n = x.shape, w.shape[0]
    out = np.full((m, n), np.nan, np.float32) if c is None else c.copy()
    fn(m, n, k, F(1.0), P(x.ctypes.data), k, P(w.ctypes.data), k, F(beta), P(out.ctypes.data), n)
    return out


@linux
@pytest.mark.parametrize("k, n", [(1024, 301), (37, 7), (8, 3), (5, 1), (1, 2)])
def test_rows_do_not_depend_on_their_company(library, k, n):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((17, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    alone = np.stack([product(library, x[i:i + 1], w)[0] for i in range(len(x))])
    assert np.allclose(alone, x.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4, atol=1e-4)
    for m in (2, 3, 4, 5, 8, 16, 17):
        for start in (0, 17 - m):
            together = product(library, x[start:start + m], w)
            assert np.array_equal(together, alone[start:start + m]), (m, start)  # bit for bit
    # beta == 1 adds to c (a bias); beta == 0 never reads c (NaN there must not leak)
    bias = rng.standard_normal((3, n), dtype=np.float32)
    assert np.array_equal(product(library, x[:3], w, 1.0, bias), bias + alone[:3])


CHECK = """
import mlx.core as mx, numpy as np
rng = np.random.default_rng(1)
w = mx.array(rng.standard_normal((3072, 1024), dtype=np.float32))
b = mx.array(rng.standard_normal((3072,), dtype=np.float32))
x = mx.array(rng.standard_normal((16, 1024), dtype=np.float32))
alone = [np.array(x[i:i + 1] @ w.T) for i in range(16)]
alone_bias = [np.array(mx.addmm(b, x[i:i + 1], w.T)) for i in range(16)]
for m in (2, 4, 7, 16):
    assert np.array_equal(np.array(x[:m] @ w.T), np.concatenate(alone[:m])), m
    assert np.array_equal(np.array(mx.addmm(b, x[:m], w.T)), np.concatenate(alone_bias[:m])), m
    y = x[:m].reshape(m, 1, 1024)  # a batch of streams, one position each, as Linear sees it
    assert np.array_equal(np.array(y @ w.T).reshape(m, -1), np.concatenate(alone[:m])), m
print("ok")
"""


@linux
def test_mlx_products_are_the_same_alone_and_batched(library):
    openblas = blas.find_openblas()
    if openblas is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    env = dict(os.environ, LD_PRELOAD=f"{library} {openblas}")
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
