"""Qwen3-TTS on Apple Silicon with MLX."""

from ._deferred_mlx_lm import defer_mlx_lm_init

defer_mlx_lm_init()  # before any mlx_lm import: its package __init__ costs seconds of start-up

from .audio import Audio, AudioChunk
from .loading import load
from .tts import TTS
from .voice import Voice

__all__ = ["Audio", "AudioChunk", "TTS", "Voice", "load"]
__version__ = "0.1.0"
