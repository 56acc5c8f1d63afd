"""The code predictor: a small transformer that fills in codebooks 1..15 of each frame."""

from __future__ import annotations

from collections.abc import Callable

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

    def sample_frame(self, hidden: mx.array, c0: mx.array, c0_embedding: mx.array, cache: list,
                     draw: Callable[[mx.array, mx.array | None], mx.array], keys: mx.array | None) -> mx.array:
        """Codebooks 1..15 of one frame, drawn one after another: (B, 16) with `c0` first.

        The first step sees the talker's hidden state and codebook 0's embedding; each later step
        the embedding of the code just drawn. `cache` must be empty (positions start at 0).
        """
        x = mx.concatenate([hidden, c0_embedding[:, None]], axis=1)
        codes = [c0]
        for step in range(1, self.config.num_code_groups):
            token = draw(self(x, step, cache), None if keys is None else keys[step - 1])
            codes.append(token)
            x = self.model.codec_embedding[step - 1](token)[:, None]
        return mx.stack(codes, axis=-1)

    def forced_logits(self, hidden: mx.array, c0_embedding: mx.array, codes: mx.array) -> mx.array:
        """Teacher-forced logits of codebooks 1..15 for frames `codes` (F, 16): (F, 15, vocab).

        One pass over `[hidden, E_0(c0), E_1(c1), ..., E_14(c14)]` with a causal mask: the same
        computation `sample_frame` does step by step, for frames whose codes are given.
        """
        steps = self.config.num_code_groups - 1
        x = [hidden[:, None], c0_embedding[:, None]]
        x += [self.model.codec_embedding[q](codes[:, q + 1])[:, None] for q in range(steps - 1)]
        h = self.model(self.project(mx.concatenate(x, axis=1).astype(hidden.dtype)))
        return mx.stack([self.lm_head[q](h[:, q + 1]) for q in range(steps)], axis=1)
