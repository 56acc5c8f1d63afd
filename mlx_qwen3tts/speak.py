"""`python -m mlx_qwen3tts.speak`: the same as `python -m mlx_qwen3tts speak`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("mlx_qwen3tts", run_name="__main__")  # the package's entry starts every command
