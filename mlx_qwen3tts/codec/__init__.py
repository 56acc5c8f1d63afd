"""The 12 Hz speech tokenizer (codec) in MLX: its streaming decoder and shared conv layers."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from ..weights import load_module, read_json, require_file
from .config import DecoderConfig, SpeechTokenizerConfig
from .decoder import SpeechDecoder, chunked_decode

__all__ = [
    "DecoderConfig",
    "SpeechDecoder",
    "SpeechTokenizerConfig",
    "chunked_decode",
    "load_speech_decoder",
]


def load_speech_decoder(folder: str | Path, dtype: mx.Dtype | None = None) -> SpeechDecoder:
    """Loads the decoder from a speech tokenizer folder (`config.json`, `model.safetensors`).

    Args:
        folder: the checkpoint's `speech_tokenizer` folder (official or converted weights).
        dtype: cast floating-point weights to this type (default: as stored).
    """
    folder = Path(folder)
    path = require_file(folder / "config.json", "speech tokenizer")
    config = SpeechTokenizerConfig.from_dict(read_json(path), path)
    weights = mx.load(str(require_file(folder / "model.safetensors", "speech tokenizer")))

    def cast(_, v: mx.array) -> mx.array:
        return v.astype(dtype) if dtype is not None and mx.issubdtype(v.dtype, mx.floating) else v

    return load_module(SpeechDecoder(config.decoder), weights, folder, cast)
