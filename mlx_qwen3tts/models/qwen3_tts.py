"""The whole Qwen3-TTS model as stored in `model.safetensors`: talker (+ speaker encoder)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..config import ModelConfig
from .speaker_encoder import PREFIX, SpeakerEncoder
from .talker import Talker


class Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.talker = Talker(config.talker)
        if config.speaker_encoder is not None:
            self.speaker_encoder = SpeakerEncoder(config.speaker_encoder)

    def sanitize(self, weights: dict[str, mx.array], fmt: str | None = None) -> dict[str, mx.array]:
        """Official and mlx-community key names already match this tree; the speaker encoder's
        convs come in either layout (`SpeakerEncoder.sanitize`). `fmt`: the safetensors format."""
        out = {k: v for k, v in weights.items() if not k.startswith(PREFIX)}
        if "speaker_encoder" in self:
            spk = {k: v for k, v in weights.items() if k.startswith(PREFIX)}
            out.update({PREFIX + k: v for k, v in self.speaker_encoder.sanitize(spk, fmt).items()})
        return out
