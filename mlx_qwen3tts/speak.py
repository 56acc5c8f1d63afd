"""`python -m mlx_qwen3tts.speak`: the same as `python -m mlx_qwen3tts speak`."""

import sys

if __name__ == "__main__":
    from mlx_qwen3tts.__main__ import run

    sys.exit(run("speak"))
