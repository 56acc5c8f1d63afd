"""`sin_squared` against float64 numpy and against MLX's own `sin`."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_qwen3tts.codec.fast_math import sin_squared


def _inputs(limit: float, n: int, seed: int = 0) -> np.ndarray:
    """Uniform values, values next to multiples of pi/2, and 0, tiny and denormal values."""
    rng = np.random.default_rng(seed)
    m = np.arange(-int(limit / (np.pi / 2)), int(limit / (np.pi / 2)) + 1)[:, None]
    near = (m * (np.pi / 2) + rng.uniform(-1e-3, 1e-3, (len(m), 64))).ravel()
    tiny = np.array([0.0, 1e-38, -1e-42, 1e-20, 1e-10, -1e-5, 3e-4, np.pi / 2, np.pi, 1.0])
    y = np.concatenate([rng.uniform(-limit, limit, n), near, tiny])
    y = y[np.abs(y) <= limit].astype(np.float32)
    return np.concatenate([y, np.nextafter(y, np.float32(np.inf)), -y])


def _errors(y: np.ndarray) -> tuple[float, float]:
    """Max abs error of `sin_squared` and of `mx.square(mx.sin)`, against float64 at the same y."""
    ref = np.sin(y.astype(np.float64)) ** 2
    fast = np.array(sin_squared(mx.array(y)), dtype=np.float64)
    native = np.array(mx.square(mx.sin(mx.array(y))), dtype=np.float64)
    return float(np.abs(fast - ref).max()), float(np.abs(native - ref).max())


def test_accurate_where_snake_runs():
    fast, native = _errors(_inputs(200.0, 1_000_000))
    # float32 steps are 6e-8 just below 1; MLX's own sin^2 errs by ~1.4e-7.
    assert fast < 3e-7
    assert fast < 2.5 * native


def test_accurate_near_zero():
    y = _inputs(2.0, 200_000, seed=1)
    ref = np.sin(y.astype(np.float64)) ** 2
    got = np.array(sin_squared(mx.array(y)), dtype=np.float64)
    # Relative accuracy is kept where sin^2 is tiny (short of float32 underflow).
    small = (np.abs(y) < 0.5) & (ref > np.finfo(np.float32).tiny)
    assert np.max(np.abs(got[small] - ref[small]) / ref[small]) < 1e-6
    assert got[y == 0].max() == 0.0


def test_accurate_for_large_arguments():
    fast, native = _errors(_inputs(1e4, 1_000_000, seed=2))
    assert fast < 3e-7
    assert fast < 2.5 * native


def test_nonfinite_inputs_give_nan():
    got = np.array(sin_squared(mx.array([np.inf, -np.inf, np.nan], dtype=mx.float32)))
    assert np.isnan(got).all()


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_keeps_dtype_and_shape(dtype):
    y = mx.array(np.random.default_rng(3).uniform(-30, 30, (2, 5, 7)).astype(np.float32)).astype(dtype)
    got = sin_squared(y)
    assert got.dtype == dtype and got.shape == y.shape
    ref = mx.square(mx.sin(y.astype(mx.float32))).astype(dtype)
    tol = {mx.float32: 3e-7, mx.float16: 1e-3, mx.bfloat16: 4e-3}[dtype]
    assert mx.abs(got.astype(mx.float32) - ref.astype(mx.float32)).max().item() <= tol
