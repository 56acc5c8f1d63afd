"""The slow-BLAS check: warn once from the API, restart the CLI with OpenBLAS preloaded."""

import logging
import os
import subprocess
import sys

import pytest

from mlx_qwen3tts import blas

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux wheels bundle the slow BLAS")


@linux
def test_cli_restarts_itself_with_openblas(tmp_path):
    if blas.find_openblas() is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nfrom mlx_qwen3tts import blas\n"
                     "print('before', blas.openblas_loaded(), flush=True)\n"
                     "blas.reexec_with_openblas([sys.argv[0]])\n"
                     "print('after', blas.openblas_loaded())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MLX_QWEN3TTS_BLAS_CHECKED")}
    out = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # The first run restarts with OpenBLAS; the restarted run does not restart again.
    assert out.stdout.split() == ["before", "False", "before", "True", "after", "True"]


@linux
def test_api_warns_once_without_openblas(monkeypatch, caplog):
    monkeypatch.setattr(blas, "openblas_loaded", lambda: False)
    monkeypatch.setattr(blas, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="mlx_qwen3tts"):
        blas.warn_if_slow()
        blas.warn_if_slow()
    assert caplog.text.count("LD_PRELOAD") == 1
