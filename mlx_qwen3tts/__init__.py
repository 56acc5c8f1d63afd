"""Qwen3-TTS on Apple Silicon with MLX."""

from .audio import Audio, AudioChunk
from .loading import load
from .tts import TTS
from .voice import Voice

__all__ = ["Audio", "AudioChunk", "TTS", "Voice", "load"]
__version__ = "0.1.0"
