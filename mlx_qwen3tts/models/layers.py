"""The decoder stack shared by the talker and the code predictor: mlx-lm's Qwen3 blocks."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.base import create_attention_mask
from mlx_lm.models.qwen3 import ModelArgs, TransformerBlock

from ..config import CodePredictorConfig, TalkerConfig


def block_args(config: TalkerConfig | CodePredictorConfig) -> ModelArgs:
    # The talker's interleaved MRoPE sees three identical position rows, which is plain
    # rotate-half RoPE, so no rope scaling is passed on.
    return ModelArgs(
        model_type="qwen3",
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size,
        num_attention_heads=config.num_attention_heads,
        rms_norm_eps=config.rms_norm_eps,
        vocab_size=0,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        head_dim=config.head_dim,
        tie_word_embeddings=False,
        rope_theta=config.rope_theta,
    )


class DecoderStack(nn.Module):
    """Qwen3 decoder layers (q/k RMSNorm before RoPE, GQA, SwiGLU) and a final RMSNorm."""

    def __init__(self, config: TalkerConfig | CodePredictorConfig):
        super().__init__()
        args = block_args(config)
        self.layers = [TransformerBlock(args) for _ in range(config.num_hidden_layers)]
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def __call__(self, h: mx.array, cache: list | None = None) -> mx.array:
        """Runs embeddings (B, L, D) through the layers; returns the final-normed hidden states."""
        cache = cache or [None] * len(self.layers)
        mask = create_attention_mask(h, cache[0])
        for layer, c in zip(self.layers, cache):
            h = layer(h, mask, c)
        return self.norm(h)


class FrameCache:
    """A KV cache of fixed capacity for one short sequence (the code predictor's 16 positions).

    The buffers are allocated once per sequence at their final size, so a compiled frame sees
    the same shapes on every call. The causal mask is only needed for a multi-token first call.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.offset = 0
        self.keys = self.values = None

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            b, heads, _, dim = keys.shape
            self.keys = mx.zeros((b, heads, self.capacity, dim), keys.dtype)
            self.values = mx.zeros((b, heads, self.capacity, values.shape[-1]), values.dtype)
        start, self.offset = self.offset, self.offset + keys.shape[2]
        if self.offset > self.capacity:
            raise ValueError(f"FrameCache holds {self.capacity} positions, asked for {self.offset}")
        self.keys[..., start:self.offset, :] = keys
        self.values[..., start:self.offset, :] = values
        return self.keys[..., :self.offset, :], self.values[..., :self.offset, :]

    def make_mask(self, n: int, **_) -> str | None:
        return "causal" if n > 1 else None
