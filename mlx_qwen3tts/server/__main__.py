"""`python -m mlx_qwen3tts.server`: the same as `python -m mlx_qwen3tts serve`."""

import sys

from ..__main__ import run

sys.exit(run("serve"))
