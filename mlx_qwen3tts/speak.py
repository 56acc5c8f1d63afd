"""`python -m mlx_qwen3tts.speak`: see `mlx_qwen3tts.app.speak`."""

import sys

from mlx_qwen3tts.app.speak import main

if __name__ == "__main__":
    sys.exit(main())
