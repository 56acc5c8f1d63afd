"""`eval "$(python -m mlx_qwen3tts.blas)"`: exports the fast-BLAS set-up into a shell (Linux).

It needs only the standard library, so it also runs before the package's dependencies are
installed.
"""

import os
import shlex

from . import fixed_env

fixed = fixed_env() or {}
for key in ("LD_PRELOAD", "OPENBLAS_CORETYPE"):
    if fixed.get(key) and fixed.get(key) != os.environ.get(key):
        print(f"export {key}={shlex.quote(fixed[key])}")
