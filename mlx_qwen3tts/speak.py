"""`python -m mlx_qwen3tts.speak`: see `mlx_qwen3tts.app.speak`."""

import sys

from mlx_qwen3tts.app.speak import main
from mlx_qwen3tts.blas import reexec_with_openblas

if __name__ == "__main__":
    reexec_with_openblas(["-m", "mlx_qwen3tts.speak", *sys.argv[1:]])
    sys.exit(main())
