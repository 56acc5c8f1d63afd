"""The slow-BLAS check: warn once from the API, restart the CLI with OpenBLAS preloaded."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_qwen3tts import blas

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux wheels bundle the slow BLAS")
ROOT = Path(__file__).resolve().parent.parent
AVX512 = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}


@linux
def test_cli_restarts_itself_with_openblas(tmp_path):
    if blas.find_openblas() is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nfrom mlx_qwen3tts import blas\n"
                     "print('before', blas.openblas_loaded(), flush=True)\n"
                     "blas.reexec_with_openblas([sys.argv[0]])\n"
                     "print('after', blas.openblas_loaded())\n"
                     "print(blas.better_core(blas.openblas_core(), blas.cpu_flags()))\n"
                     "print(blas.gemv_forward_loaded() == (blas.gemv_forward_library() is not None))\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "MLX_QWEN3TTS_BLAS_CHECKED", "OPENBLAS_CORETYPE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # the forwarder is built afresh
    # The probe lies outside the checkout: the checkout's package goes on its path (an installed
    # copy, where there is one, would come after it).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # The first run restarts with OpenBLAS and kernels that match this CPU (nothing better left
    # to force); the restarted run does not restart again.
    assert out.stdout.split() == ["before", "False", "before", "True", "after", "True", "None", "True"]


def warn_twice(monkeypatch, caplog) -> str:
    """The log of two `warn_if_slow()` calls in a fresh process state."""
    monkeypatch.setattr(blas, "_checked", False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlx_qwen3tts"):
        blas.warn_if_slow()
        blas.warn_if_slow()
    return caplog.text


@pytest.fixture
def generic_openblas(monkeypatch):
    """A loaded OpenBLAS that chose its generic kernels on an AVX-512 CPU."""
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(blas, "_openblas_path", lambda: "/usr/lib/libopenblas.so.0")
    monkeypatch.setattr(blas, "openblas_core", lambda path=None: "Prescott")
    monkeypatch.setattr(blas, "cpu_flags", lambda: AVX512)


@linux
def test_api_warns_once_without_openblas(monkeypatch, caplog):
    monkeypatch.setattr(blas, "openblas_loaded", lambda: False)
    assert warn_twice(monkeypatch, caplog).count("LD_PRELOAD") == 1


@pytest.mark.parametrize("core, flags, want", [
    ("Prescott", AVX512, "SkylakeX"),  # an OpenBLAS older than the CPU falls back to SSE3
    ("Haswell", AVX512, "SkylakeX"),
    ("SkylakeX", AVX512, None),
    ("Cooperlake", AVX512, None),
    ("Prescott", {"avx2", "fma"}, "Haswell"),
    ("Zen", {"avx2", "fma"}, None),
    ("Prescott", {"sse3"}, None),
    (None, AVX512, None),
])
def test_better_core(core, flags, want):
    assert blas.better_core(core, flags) == want


@linux
def test_restart_picks_kernels_when_openblas_is_generic(monkeypatch, generic_openblas):
    calls = []
    monkeypatch.delenv("MLX_QWEN3TTS_BLAS_CHECKED", raising=False)
    monkeypatch.setattr(blas, "gemv_forward_library", lambda: None)
    monkeypatch.setattr(blas.os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libopenblas.so.0")
    blas.reexec_with_openblas(["-m", "x"])
    (argv, env), = calls
    assert argv[1:] == ["-m", "x"]
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX" and env["LD_PRELOAD"] == "/usr/lib/libopenblas.so.0"
    # A choice the user made is kept: nothing to fix, no restart.
    calls.clear()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    blas.reexec_with_openblas(["-m", "x"])
    assert calls == []


@linux
def test_api_warns_once_about_generic_kernels(monkeypatch, caplog, generic_openblas):
    assert warn_twice(monkeypatch, caplog).count("OPENBLAS_CORETYPE=SkylakeX") == 1


@linux
def test_system_openblas_reports_its_core():
    path = blas.find_openblas()
    if path is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    assert blas.openblas_core(path)


CHECK = """
import mlx.core as mx, numpy as np
from mlx_qwen3tts import blas
assert blas.gemv_forward_loaded()
rng = np.random.default_rng(0)
for m, k, n in [(1, 1024, 3072), (1, 7, 5), (3, 16, 1), (1, 1, 1), (1, 33, 1), (5, 8, 9)]:
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = a.astype(np.float64) @ b
    tol = 1e-5 * max(1.0, np.abs(want).max())
    A, B = mx.array(a), mx.array(b)
    At, Bt = mx.array(a.T).T, mx.array(b.T).T  # the transposed operand layouts
    for got in (A @ B, At @ B, A @ Bt, At @ Bt, mx.array(np.vstack([a, a]))[m:] @ B):
        assert np.abs(np.array(got) - want).max() < tol, (m, k, n)
    # beta and alpha, with C read: the forwarder must honour both
    got = mx.addmm(mx.ones((m, n)), A, B, alpha=2.0, beta=0.5)
    assert np.abs(np.array(got) - (0.5 + 2 * want)).max() < 3 * tol, (m, k, n)
print("ok")
"""


@linux
def test_gemv_forwarder_gives_the_same_products(tmp_path):
    if blas.find_openblas() is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    lib = blas.gemv_forward_library(tmp_path)
    if lib is None:
        pytest.skip("no C compiler here: the forwarder is optional")
    assert blas.gemv_forward_library(tmp_path) == lib  # built once, then reused
    env = dict(os.environ, LD_PRELOAD=f"{lib} {blas.find_openblas()}")
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_gemv_forwarder_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("MLX_QWEN3TTS_NO_GEMV_FORWARD", "1")
    assert blas.gemv_forward_library(tmp_path) is None


@linux
def test_api_warns_once_without_the_forwarder(monkeypatch, caplog):
    monkeypatch.delenv("MLX_QWEN3TTS_NO_GEMV_FORWARD", raising=False)
    monkeypatch.setattr(blas, "_openblas_path", lambda: "/usr/lib/libopenblas.so.0")
    monkeypatch.setattr(blas, "_needed_core", lambda path: None)
    monkeypatch.setattr(blas, "gemv_forward_loaded", lambda: False)
    monkeypatch.setattr(blas, "_compiler", lambda: "/usr/bin/cc")
    assert warn_twice(monkeypatch, caplog).count("python -m mlx_qwen3tts.blas") == 1
    # Turned off on purpose: no warning.
    monkeypatch.setenv("MLX_QWEN3TTS_NO_GEMV_FORWARD", "1")
    assert "forwarder" not in warn_twice(monkeypatch, caplog)
