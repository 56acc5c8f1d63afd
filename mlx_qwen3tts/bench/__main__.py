"""`python -m mlx_qwen3tts.bench`: the same as `python -m mlx_qwen3tts bench`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("mlx_qwen3tts", run_name="__main__")  # the package's entry starts every command
