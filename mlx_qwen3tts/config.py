"""Typed configuration read from a Qwen3-TTS checkpoint's `config.json`: the structure of the model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def known_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of dataclass `cls` (JSON configs carry extras)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class CodePredictorConfig:
    """The small transformer that predicts codebooks 1..15 of each frame."""

    hidden_size: int = 1024
    intermediate_size: int = 3072
    num_hidden_layers: int = 5
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    vocab_size: int = 2048
    num_code_groups: int = 16
    max_position_embeddings: int = 65536

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodePredictorConfig:
        return cls(**known_fields(cls, data))


@dataclass
class TalkerConfig:
    """The main LM over the dual text/codec track, with its codec vocabulary layout."""

    hidden_size: int = 1024
    intermediate_size: int = 3072
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 32768
    vocab_size: int = 3072
    text_vocab_size: int = 151936
    text_hidden_size: int = 2048
    num_code_groups: int = 16
    codec_pad_id: int = 2148
    codec_bos_id: int = 2149
    codec_eos_token_id: int = 2150
    codec_think_id: int = 2154
    codec_nothink_id: int = 2155
    codec_think_bos_id: int = 2156
    codec_think_eos_id: int = 2157
    codec_language_id: dict[str, int] = field(default_factory=dict)
    spk_id: dict[str, int] = field(default_factory=dict)
    spk_is_dialect: dict[str, str | bool] = field(default_factory=dict)
    code_predictor: CodePredictorConfig = field(default_factory=CodePredictorConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TalkerConfig:
        kwargs = known_fields(cls, data)
        kwargs["code_predictor"] = CodePredictorConfig.from_dict(data.get("code_predictor_config") or {})
        # Speaker ids sometimes arrive as one-element lists; keep plain ints.
        kwargs["spk_id"] = {k.lower(): (v[0] if isinstance(v, list) else int(v))
                            for k, v in (data.get("spk_id") or {}).items()}
        kwargs["spk_is_dialect"] = {k.lower(): v for k, v in (data.get("spk_is_dialect") or {}).items()}
        kwargs["codec_language_id"] = {k.lower(): int(v) for k, v in (data.get("codec_language_id") or {}).items()}
        return cls(**kwargs)

    @property
    def codebook_size(self) -> int:
        return self.code_predictor.vocab_size


@dataclass
class SpeakerEncoderConfig:
    """The ECAPA-TDNN speaker encoder of the Base models."""

    mel_dim: int = 128
    enc_dim: int = 1024
    enc_channels: list[int] = field(default_factory=lambda: [512, 512, 512, 512, 1536])
    enc_kernel_sizes: list[int] = field(default_factory=lambda: [5, 3, 3, 3, 1])
    enc_dilations: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 1])
    enc_attention_channels: int = 128
    enc_res2net_scale: int = 8
    enc_se_channels: int = 128
    sample_rate: int = 24000

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> SpeakerEncoderConfig:
        """Reads a `speaker_encoder_config` dict, or the main config.json that holds one."""
        params = params.get("speaker_encoder_config", params)
        config = cls(**known_fields(cls, params))
        n = len(config.enc_channels)
        if n < 3 or len(config.enc_kernel_sizes) != n or len(config.enc_dilations) != n:
            raise ValueError("enc_channels, enc_kernel_sizes and enc_dilations need the same length (>= 3)")
        return config


@dataclass
class ModelConfig:
    """Top-level `config.json` of a Qwen3-TTS 12 Hz checkpoint."""

    talker: TalkerConfig
    tts_model_type: str = "custom_voice"
    tts_model_size: str = "0b6"
    tokenizer_type: str = "qwen3_tts_tokenizer_12hz"
    tts_pad_token_id: int = 151671
    tts_bos_token_id: int = 151672
    tts_eos_token_id: int = 151673
    speaker_encoder: SpeakerEncoderConfig | None = None  # Base models only

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        kwargs = known_fields(cls, data)
        kwargs["talker"] = TalkerConfig.from_dict(data.get("talker_config") or {})
        if kwargs.get("tts_model_type") == "base":
            kwargs["speaker_encoder"] = SpeakerEncoderConfig.from_dict(data.get("speaker_encoder_config") or {})
        return cls(**kwargs)

    @property
    def languages(self) -> list[str]:
        """Selectable languages: "auto" first, then every non-dialect language, sorted."""
        return ["auto"] + sorted(k for k in self.talker.codec_language_id if "dialect" not in k)

    @property
    def speakers(self) -> list[str]:
        return sorted(self.talker.spk_id)

    @property
    def supports_instruct(self) -> bool:
        # 0.6B CustomVoice was not trained with instructions; the reference drops them there.
        return self.tts_model_type == "voice_design" or (
            self.tts_model_type == "custom_voice" and self.tts_model_size != "0b6")
