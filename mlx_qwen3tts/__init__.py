"""Qwen3-TTS on Apple Silicon with MLX.

The public names load on first use, so `import mlx_qwen3tts` (and the command-line tools that
start from it) pay for MLX and the model code only when they need them.
"""

from ._checkout import find_app_in_checkout
from ._deferred_mlx_lm import defer_mlx_lm_init

defer_mlx_lm_init()  # before any mlx_lm import: its package __init__ costs seconds of start-up
find_app_in_checkout()  # a source checkout has no mlx_qwen3tts/app folder

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "SAMPLE_RATE", "Audio", "AudioChunk", "OptionError", "SpeechOptions", "TTS", "TextFeed",
           "Voice", "clean_text", "default_model", "load"]
__version__ = "0.1.0"

_EXPORTS = {"Audio": "audio", "AudioChunk": "audio", "OptionError": "checks", "SpeechOptions": "options",
            "TTS": "tts", "TextFeed": "text", "Voice": "voice", "clean_text": "text", "load": "loading",
            "SAMPLE_RATE": "audio", "DEFAULT_MODEL": "loading", "MODEL_ENV": "loading", "default_model": "loading"}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlx_qwen3tts' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
