"""The tests' tiny random checkpoints: `mlx_qwen3tts.testing`, the one source of them."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_qwen3tts.testing import byte_symbols, model_config, write_checkpoint, write_speech_tokenizer
from mlx_qwen3tts.testing import write_text_tokenizer

__all__ = ["byte_symbols", "make_tiny_checkpoint", "tiny_config", "write_speech_tokenizer", "write_text_tokenizer"]


def tiny_config(kind: str = "custom_voice", size: str = "1b7") -> dict:
    return model_config("tiny", kind, size)


def make_tiny_checkpoint(folder: Path, kind: str = "custom_voice", size: str = "1b7", seed: int = 0,
                         dtype: mx.Dtype = mx.float32) -> Path:
    """Writes config.json, model.safetensors, generation_config.json and tokenizer files."""
    if kind == "base":
        raise NotImplementedError("tiny Base checkpoints need the official speaker-encoder layout")
    return write_checkpoint(folder, "tiny", kind, seed, dtype, size)
