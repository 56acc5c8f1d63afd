"""The code predictor: a small transformer that fills in codebooks 1..15 of each frame."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..config import CodePredictorConfig
from .layers import DecoderStack


class CodePredictorModel(DecoderStack):
    def __init__(self, config: CodePredictorConfig, talker_hidden: int):
        super().__init__(config)
        # Tables are talker-wide: the lookup happens before the projection to this width.
        self.codec_embedding = [
            nn.Embedding(config.vocab_size, talker_hidden) for _ in range(config.num_code_groups - 1)
        ]


class CodePredictor(nn.Module):
    def __init__(self, config: CodePredictorConfig, talker_hidden: int):
        super().__init__()
        self.config = config
        self.model = CodePredictorModel(config, talker_hidden)
        self.lm_head = [
            nn.Linear(config.hidden_size, config.vocab_size, bias=False)
            for _ in range(config.num_code_groups - 1)
        ]
        if config.hidden_size != talker_hidden:
            self.small_to_mtp_projection = nn.Linear(talker_hidden, config.hidden_size, bias=True)

    def project(self, x: mx.array) -> mx.array:
        if "small_to_mtp_projection" in self:
            return self.small_to_mtp_projection(x)
        return x

    def __call__(self, embeds: mx.array, step: int, cache: list) -> mx.array:
        """Talker-wide inputs (B, L, D) at codebook `step` (1..15) -> logits for that codebook."""
        h = self.model(self.project(embeds), cache)
        return self.lm_head[step - 1](h[:, -1])
