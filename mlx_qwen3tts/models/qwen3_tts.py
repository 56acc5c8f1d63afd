"""The whole Qwen3-TTS model as stored in `model.safetensors`: talker (+ speaker encoder)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..config import ModelConfig
from .talker import Talker


class Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.talker = Talker(config.talker)
        if config.tts_model_type == "base":
            from .speaker_encoder import SpeakerEncoder, SpeakerEncoderConfig

            self.speaker_encoder = SpeakerEncoder(SpeakerEncoderConfig.from_dict(config.speaker_encoder))

    def sanitize(self, weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Official key names already match this tree; the speaker encoder transposes its convs."""
        if "speaker_encoder" not in self:
            return {k: v for k, v in weights.items() if not k.startswith("speaker_encoder.")}
        spk = {k: v for k, v in weights.items() if k.startswith("speaker_encoder.")}
        out = {k: v for k, v in weights.items() if not k.startswith("speaker_encoder.")}
        out.update({f"speaker_encoder.{k}": v for k, v in self.speaker_encoder.sanitize(spk).items()})
        return out
