"""The talker: the main LM that reads the text/codec dual track and emits codebook 0."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..config import TalkerConfig
from .code_predictor import CodePredictor
from .layers import DecoderStack


class TextProjection(nn.Module):
    """Maps the 2048-wide text embeddings into the talker's width (Linear, SiLU, Linear)."""

    def __init__(self, text_hidden: int, hidden: int):
        super().__init__()
        self.linear_fc1 = nn.Linear(text_hidden, text_hidden, bias=True)
        self.linear_fc2 = nn.Linear(text_hidden, hidden, bias=True)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_fc2(nn.silu(self.linear_fc1(x)))


class TalkerModel(DecoderStack):
    def __init__(self, config: TalkerConfig):
        super().__init__(config)
        self.text_embedding = nn.Embedding(config.text_vocab_size, config.text_hidden_size)
        self.codec_embedding = nn.Embedding(config.vocab_size, config.hidden_size)


class Talker(nn.Module):
    def __init__(self, config: TalkerConfig):
        super().__init__()
        self.config = config
        self.model = TalkerModel(config)
        self.text_projection = TextProjection(config.text_hidden_size, config.hidden_size)
        self.codec_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.code_predictor = CodePredictor(config.code_predictor, config.hidden_size)

    def embed_text(self, ids: mx.array) -> mx.array:
        """Text-side vectors: every text token, control tokens included, goes through the projection."""
        return self.text_projection(self.model.text_embedding(ids))

    def embed_codec(self, ids: mx.array) -> mx.array:
        return self.model.codec_embedding(ids)

    def embed_frame(self, codes: mx.array) -> mx.array:
        """Sum of the 16 codebook embeddings of frames `codes` (..., 16): the talker's feedback."""
        h = self.model.codec_embedding(codes[..., 0])
        for q, table in enumerate(self.code_predictor.model.codec_embedding):
            h = h + table(codes[..., q + 1])
        return h

    def __call__(self, embeds: mx.array, cache: list | None = None) -> tuple[mx.array, mx.array]:
        """One forward over (B, L, D) input vectors: (codebook-0 logits, final-normed hidden)."""
        h = self.model(embeds, cache)
        return self.codec_head(h), h
