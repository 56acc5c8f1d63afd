"""The application layer: live playback and the `speak` command.

This folder is the package `mlx_qwen3tts.app` (pyproject maps it there; a source checkout finds
it through `mlx_qwen3tts`), and has no other import name: imported as `app`, the same files
would make a second, separate copy of every class and setting in it.
"""

if __name__ != "mlx_qwen3tts.app":
    raise ImportError(f"the app folder is the package mlx_qwen3tts.app, not {__name__!r}: "
                      "import mlx_qwen3tts.app (for example, from mlx_qwen3tts.app import Player)")

from .sinks import Progress, Recorder, feed  # noqa: E402
from .device import NoOutputDevice, check_output_device
from .player import Player  # noqa: E402
from .session import Speech  # noqa: E402
from mlx_qwen3tts.text import estimate_seconds  # noqa: E402

__all__ = [
    "NoOutputDevice",
    "Player",
    "Progress",
    "Recorder",
    "Speech",
    "check_output_device",
    "estimate_seconds",
    "feed",
]
