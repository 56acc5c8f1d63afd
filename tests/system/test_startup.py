"""Start-up: the package imports mlx-lm's model pieces without mlx-lm's heavy package __init__."""

import subprocess
import sys

import pytest

# Each case runs in a fresh interpreter: (what it runs, what it must print).
CASES = {
    "speak imports without transformers": (
        "import sys, mlx_qwen3tts.app.cli, mlx_qwen3tts.generation, mlx_qwen3tts.sampling\n"
        "print('transformers' in sys.modules, 'mlx_lm.utils' in sys.modules)",
        "False False"),
    "mlx_lm is whole for programs that use it after us": (
        "import importlib.metadata, sys, mlx_qwen3tts, mlx_lm\n"
        "from mlx_lm import generate, load\n"
        "import mlx_lm.models.cache as cache\n"
        "print(mlx_lm.__version__ == importlib.metadata.version('mlx-lm'), callable(load),\n"
        "      callable(generate), type(mlx_lm).__name__, hasattr(cache, 'KVCache'))",
        "True True True module True"),
    "a program's own submodule import leaves mlx_lm as its __init__ makes it": (
        "import types, mlx_qwen3tts\n"
        "from mlx_lm.generate import stream_generate\n"
        "import mlx_lm\n"
        "from mlx_lm import generate\n"
        "print(type(mlx_lm).__name__, isinstance(mlx_lm.generate, types.FunctionType), generate is mlx_lm.generate,\n"
        "      stream_generate is mlx_lm.stream_generate)",
        "module True True True"),
    "an unknown mlx_lm name is an AttributeError": (
        "import mlx_qwen3tts, mlx_lm\n"
        "try:\n    mlx_lm.no_such_name\nexcept AttributeError as e:\n    print(e)",
        "module 'mlx_lm' has no attribute 'no_such_name'"),
    "mlx_lm imported first is left alone": (
        "import mlx_lm, mlx_qwen3tts, sys\n"
        "print(type(sys.modules['mlx_lm']).__name__, 'transformers' in sys.modules)",
        "module True"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_startup(case):
    code, expected = CASES[case]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == expected
