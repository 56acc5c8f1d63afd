"""The codec encoder's config: the Mimi `encoder_config` block of speech_tokenizer/config.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import known_fields


@dataclass
class EncoderConfig:
    """Defaults are the released checkpoint's values."""

    sampling_rate: int = 24000
    frame_rate: float = 12.5
    audio_channels: int = 1
    # SEANet
    num_filters: int = 64
    kernel_size: int = 7
    last_kernel_size: int = 3
    residual_kernel_size: int = 3
    num_residual_layers: int = 1
    dilation_growth_rate: int = 2
    compress: int = 2
    upsampling_ratios: list[int] = field(default_factory=lambda: [8, 6, 5, 4])
    use_causal_conv: bool = True
    pad_mode: str = "constant"
    use_conv_shortcut: bool = False
    # transformer
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int = 8
    head_dim: int = 64
    intermediate_size: int = 2048
    hidden_act: str = "gelu"
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    attention_bias: bool = False
    # quantizer
    num_quantizers: int = 32
    num_semantic_quantizers: int = 1
    codebook_size: int = 2048
    codebook_dim: int = 256
    vector_quantization_hidden_dimension: int = 256
    # codes kept per frame (`encoder_valid_num_quantizers` of the top level)
    num_codes: int = 16

    @classmethod
    def from_dict(cls, d: dict[str, Any], num_codes: int | None = None) -> EncoderConfig:
        """Builds from the `encoder_config` block (unknown keys ignored) and the number of codes kept."""
        kwargs = known_fields(cls, d)
        if d.get("_frame_rate") is not None and "frame_rate" not in kwargs:
            kwargs["frame_rate"] = d["_frame_rate"]
        if "head_dim" not in d and "hidden_size" in d and "num_attention_heads" in d:
            kwargs["head_dim"] = d["hidden_size"] // d["num_attention_heads"]
        if num_codes is not None:
            kwargs["num_codes"] = num_codes
        cfg = cls(**kwargs)
        if cfg.frame_rate is None:
            cfg.frame_rate = cfg.sampling_rate / (cfg.hop_length * 2)
        cfg.validate()
        return cfg

    @classmethod
    def from_speech_tokenizer(cls, d: dict[str, Any]) -> EncoderConfig:
        """Builds from the whole parsed speech_tokenizer/config.json."""
        return cls.from_dict(d.get("encoder_config") or {}, d.get("encoder_valid_num_quantizers", 16))

    def validate(self) -> None:
        if not self.use_causal_conv or self.pad_mode != "constant":
            raise ValueError("only causal SEANet convs with zero (constant) padding are supported")
        if self.audio_channels != 1:
            raise ValueError(f"only mono codecs are supported, got audio_channels={self.audio_channels}")
        if self.hidden_act != "gelu":
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}")
        if not self.num_semantic_quantizers <= self.num_codes <= self.num_quantizers:
            raise ValueError(
                f"num_codes {self.num_codes} outside [{self.num_semantic_quantizers}, {self.num_quantizers}]"
            )
        if self.downsample_stride != 2:
            raise ValueError("the encoder needs exactly one 2x downsample after SEANet (frame_rate mismatch)")

    @property
    def hop_length(self) -> int:
        """Samples per SEANet output frame (960 for the released codec)."""
        return math.prod(self.upsampling_ratios)

    @property
    def downsample_stride(self) -> int:
        return round(math.ceil(self.sampling_rate / self.hop_length) / self.frame_rate)

    @property
    def downsample_kernel(self) -> int:
        return 2 * int(math.ceil(self.sampling_rate / self.hop_length) / self.frame_rate)

    @property
    def samples_per_frame(self) -> int:
        """Samples per code frame (1920 for the released codec)."""
        return self.hop_length * 2
