"""The application layer: live playback and the `speak` command."""

from .pipeline import Progress, Recorder, feed
from .player import NoOutputDevice, Player, check_output_device
from .session import Speech
from mlx_qwen3tts.text import estimate_seconds, split_sentences

__all__ = [
    "NoOutputDevice",
    "Player",
    "Progress",
    "Recorder",
    "Speech",
    "check_output_device",
    "estimate_seconds",
    "feed",
    "split_sentences",
]
