"""The whole Qwen3-TTS model as stored in `model.safetensors`: talker (+ speaker encoder)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ..config import ModelConfig
from .speaker_encoder import SpeakerEncoder
from .talker import Talker


class Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.talker = Talker(config.talker)
        if config.speaker_encoder is not None:
            self.speaker_encoder = SpeakerEncoder(config.speaker_encoder)

    def sanitize(self, weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Official key names already match this tree; the speaker encoder transposes its convs.

        Converted weights pass through: a kernel already shaped `(out, k, in)` as the module
        wants is not transposed again (ECAPA kernels never have `k == in`, so this is unambiguous).
        """
        if "speaker_encoder" not in self:
            return {k: v for k, v in weights.items() if not k.startswith("speaker_encoder.")}
        shapes = {f"speaker_encoder.{k}": v.shape for k, v in tree_flatten(self.speaker_encoder.parameters())}
        spk, out = {}, {}
        for k, v in weights.items():
            converted = v.ndim == 3 and v.shape == shapes.get(k) and v.shape[1] != v.shape[2]
            if k.startswith("speaker_encoder.") and not converted:
                spk[k] = v
            else:
                out[k] = v
        out.update({f"speaker_encoder.{k}": v for k, v in self.speaker_encoder.sanitize(spk).items()})
        return out
