"""The command-line entries: one dispatcher, every `python -m` form, and the restart guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def test_dispatcher_lists_the_commands():
    out = run("-m", "mlx_qwen3tts", "--help")
    assert out.returncode == 0, out.stderr
    for command in ("speak", "convert", "bench", "serve"):
        assert f"  {command} " in out.stdout
    bare = run("-m", "mlx_qwen3tts")
    assert bare.returncode == 2 and "usage: python -m mlx_qwen3tts <command>" in bare.stdout


def test_unknown_command_is_one_line():
    out = run("-m", "mlx_qwen3tts", "speek", "Hello.")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: unknown command 'speek'; choose one of: speak, convert, bench, serve"


@pytest.mark.parametrize("argv, needle", [
    (("-m", "mlx_qwen3tts", "speak", "--help"), "--list-speakers"),
    (("-m", "mlx_qwen3tts.speak", "--help"), "--list-speakers"),
    (("-m", "mlx_qwen3tts", "convert", "--help"), "--quant-recipe"),
    (("-m", "mlx_qwen3tts.convert_checkpoint", "--help"), "--quant-recipe"),
    (("convert.py", "--help"), "--quant-recipe"),
    (("-m", "mlx_qwen3tts", "bench", "--help"), "--make-checkpoint"),
    (("-m", "mlx_qwen3tts.bench", "--help"), "--make-checkpoint"),
    (("-m", "mlx_qwen3tts", "serve", "--help"), "--max-queue"),
    (("-m", "mlx_qwen3tts.server", "--help"), "--max-queue"),
])
def test_every_entry_reaches_its_parser(argv, needle):
    out = run(*argv, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert needle in out.stdout and "usage: mlx-qwen3tts " in out.stdout


@pytest.mark.parametrize("module, needle", [
    ("mlx_qwen3tts.bench.server", "--requests"),
    ("mlx_qwen3tts.bench.gpu_check", "--quick"),
])
def test_the_tools_start_through_the_entry_too(module, needle):
    out = run("-m", module, "--help", cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert needle in out.stdout


def test_only_the_entry_restarts_and_nothing_imports_it():
    """Every way in hands its start to `mlx_qwen3tts.__main__`, the one place that restarts."""
    package = ROOT / "mlx_qwen3tts"
    entry = package / "__main__.py"
    sources = [p for p in [*package.rglob("*.py"), *(ROOT / "app").rglob("*.py"), ROOT / "convert.py"]
               if p != entry and p != package / "blas" / "__init__.py"]
    assert not [p for p in sources if "restart_command_line(" in p.read_text()]
    assert not [p for p in sources if "__main__ import" in p.read_text()]
    assert "restart_command_line()" in entry.read_text()


def _without_fast_blas() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE", "MLX_QWEN3TTS_BLAS_CHECKED")}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the restart is for Linux's bundled BLAS")
def test_a_command_restarts_itself_but_never_another_program():
    from mlx_qwen3tts import blas

    if blas.find_openblas() is None:
        pytest.skip("no system OpenBLAS here (apt-get install libopenblas0-pthread)")
    probe = ("import os, sys\nfrom mlx_qwen3tts.blas import restart_command_line\n"
             "restart_command_line()\nprint('restarted' if os.environ.get('MLX_QWEN3TTS_BLAS_CHECKED') else 'as is')")
    # A program of the user's (here `python -c`) that calls the entry keeps its process.
    assert run("-c", probe, env=_without_fast_blas()).stdout.strip() == "as is"
    # A command line of ours restarts with OpenBLAS preloaded ...
    code = f"import sys\nsys.orig_argv = [sys.executable, '-m', 'mlx_qwen3tts.speak', '--help']\n{probe}"
    out = run("-c", code, env=_without_fast_blas())
    assert out.returncode == 0, out.stderr
    # ... which here means running `-m mlx_qwen3tts.speak` again: its help proves the restart.
    assert "--list-speakers" in out.stdout
    # MLX_QWEN3TTS_NO_RESTART=1 turns it off.
    off = run("-c", code, env=dict(_without_fast_blas(), MLX_QWEN3TTS_NO_RESTART="1"))
    assert off.stdout.splitlines()[0] == "as is" and "--list-speakers" not in off.stdout
