"""Start-up: the package imports mlx-lm's model pieces without mlx-lm's heavy package __init__."""

import subprocess
import sys


def _run(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_speak_imports_without_transformers():
    out = _run("import sys, mlx_qwen3tts.app.speak, mlx_qwen3tts.generation, mlx_qwen3tts.sampling\n"
               "print('transformers' in sys.modules, 'mlx_lm.utils' in sys.modules)")
    assert out == "False False"


def test_mlx_lm_is_whole_for_programs_that_use_it_after_us():
    out = _run("import importlib.metadata, sys, mlx_qwen3tts, mlx_lm\n"
               "from mlx_lm import generate, load\n"
               "import mlx_lm.models.cache as cache\n"
               "print(mlx_lm.__version__ == importlib.metadata.version('mlx-lm'), callable(load),\n"
               "      callable(generate), type(mlx_lm).__name__, hasattr(cache, 'KVCache'))")
    assert out == "True True True module True"


def test_missing_mlx_lm_name_is_an_attribute_error():
    out = _run("import mlx_qwen3tts, mlx_lm\n"
               "try:\n    mlx_lm.no_such_name\nexcept AttributeError as e:\n    print(e)")
    assert out == "module 'mlx_lm' has no attribute 'no_such_name'"


def test_mlx_lm_imported_first_is_left_alone():
    out = _run("import mlx_lm, mlx_qwen3tts, sys\n"
               "print(type(sys.modules['mlx_lm']).__name__, 'transformers' in sys.modules)")
    assert out == "module True"
