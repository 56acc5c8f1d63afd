"""Typed views of the 12 Hz speech tokenizer's `config.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import known_fields

MODEL_TYPE = "qwen3_tts_tokenizer_12hz"


@dataclass
class DecoderConfig:
    """The `decoder_config` block. Defaults are the released checkpoint's values."""

    codebook_size: int = 2048
    codebook_dim: int = 512
    latent_dim: int = 1024
    decoder_dim: int = 1536
    hidden_size: int = 512
    intermediate_size: int = 1024
    num_hidden_layers: int = 8
    num_attention_heads: int = 16
    num_key_value_heads: int = 16
    head_dim: int = 64
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 8000
    sliding_window: int = 72
    layer_scale_initial_scale: float = 0.01
    attention_bias: bool = False
    num_quantizers: int = 16
    upsample_rates: list[int] = field(default_factory=lambda: [8, 5, 4, 3])
    upsampling_ratios: list[int] = field(default_factory=lambda: [2, 2])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecoderConfig:
        """Builds from the JSON block; unknown keys are ignored."""
        kwargs = known_fields(cls, d)
        # Without an explicit `head_dim` the reference splits the hidden size evenly.
        if "head_dim" not in d and "hidden_size" in d and "num_attention_heads" in d:
            kwargs["head_dim"] = d["hidden_size"] // d["num_attention_heads"]
        for key in ("upsample_rates", "upsampling_ratios"):
            if key in kwargs:
                kwargs[key] = [int(r) for r in kwargs[key]]
        return cls(**kwargs)

    @property
    def total_upsample(self) -> int:
        """Output samples per code frame (1920 for the released codec)."""
        n = 1
        for r in (*self.upsampling_ratios, *self.upsample_rates):
            n *= r
        return n


@dataclass
class SpeechTokenizerConfig:
    """The top level of `speech_tokenizer/config.json`."""

    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    encoder_config: dict[str, Any] = field(default_factory=dict)  # parsed by codec.encoder_config
    model_type: str = MODEL_TYPE
    encoder_valid_num_quantizers: int = 16
    input_sample_rate: int = 24000
    output_sample_rate: int = 24000
    decode_upsample_rate: int = 1920
    encode_downsample_rate: int = 1920

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | Path = "config.json") -> SpeechTokenizerConfig:
        """Builds from the parsed JSON (unknown keys are ignored); raises ValueError if it is
        not a 12 Hz speech tokenizer's."""
        if d.get("model_type") != MODEL_TYPE:
            raise ValueError(
                f"{where} has model_type {d.get('model_type')!r}; expected {MODEL_TYPE!r} "
                "(the 12 Hz speech tokenizer)"
            )
        kwargs = known_fields(cls, d)
        kwargs.pop("decoder", None)
        return cls(decoder=DecoderConfig.from_dict(d.get("decoder_config") or {}), **kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> SpeechTokenizerConfig:
        """Reads a `config.json`; raises ValueError if it is not a 12 Hz speech tokenizer."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), path)
