"""`python -m mlx_qwen3tts.bench`: the same as `python -m mlx_qwen3tts bench`."""

import sys

from ..__main__ import run

sys.exit(run("bench"))
