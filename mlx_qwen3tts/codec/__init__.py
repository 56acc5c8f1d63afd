"""The 12 Hz speech tokenizer (codec) in MLX: its streaming decoder and shared conv layers."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from ..loading import load_strict
from .config import DecoderConfig, SpeechTokenizerConfig
from .decoder import SpeechDecoder, chunked_decode

__all__ = [
    "DecoderConfig",
    "SpeechDecoder",
    "SpeechTokenizerConfig",
    "chunked_decode",
    "load_speech_decoder",
]


def _require(path: Path, folder: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} not found in speech tokenizer folder {folder}")
    return path


def load_speech_decoder(folder: str | Path, dtype: mx.Dtype | None = None) -> SpeechDecoder:
    """Loads the decoder from a speech tokenizer folder (`config.json`, `model.safetensors`).

    Args:
        folder: the checkpoint's `speech_tokenizer` folder (official or converted weights).
        dtype: cast floating-point weights to this type (default: as stored).
    """
    folder = Path(folder)
    config = SpeechTokenizerConfig.from_file(_require(folder / "config.json", folder))
    weights = mx.load(str(_require(folder / "model.safetensors", folder)))
    decoder = SpeechDecoder(config.decoder)
    weights = decoder.sanitize(weights)
    if dtype is not None:
        weights = {
            k: v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) else v
            for k, v in weights.items()
        }
    load_strict(decoder, weights, folder)
    decoder.eval()
    mx.eval(decoder.parameters())
    return decoder
