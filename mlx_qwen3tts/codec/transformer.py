"""The decoder's pre-transformer: causal sliding-window attention with a bounded stream cache."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.base import create_causal_mask
from mlx_lm.models.cache import RotatingKVCache

from .config import DecoderConfig
from .encoder_config import EncoderConfig
from .conv import StreamingModule

_ACTIVATIONS = {"silu": nn.silu, "gelu": nn.gelu}


class Attention(nn.Module):
    """Multi-head attention with RoPE, for the decoder's and the encoder's transformers."""

    def __init__(self, cfg: DecoderConfig | EncoderConfig):
        super().__init__()
        dim, bias = cfg.hidden_size, cfg.attention_bias
        self.n_heads = cfg.num_attention_heads
        self.n_kv_heads = cfg.num_key_value_heads
        self.scale = cfg.head_dim**-0.5
        self.q_proj = nn.Linear(dim, self.n_heads * cfg.head_dim, bias=bias)
        self.k_proj = nn.Linear(dim, self.n_kv_heads * cfg.head_dim, bias=bias)
        self.v_proj = nn.Linear(dim, self.n_kv_heads * cfg.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * cfg.head_dim, dim, bias=bias)
        self.rope = nn.RoPE(cfg.head_dim, traditional=False, base=cfg.rope_theta)

    def __call__(self, x: mx.array, mask, cache: RotatingKVCache | None = None) -> mx.array:
        b, n, _ = x.shape
        q = self.q_proj(x).reshape(b, n, self.n_heads, -1).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        offset = cache.offset if cache is not None else 0
        q, k = self.rope(q, offset=offset), self.rope(k, offset=offset)
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.o_proj(o.transpose(0, 2, 1, 3).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        if cfg.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {cfg.hidden_act!r}")
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float):
        super().__init__()
        self.scale = mx.full((dim,), init)

    def __call__(self, x: mx.array) -> mx.array:
        return self.scale * x


class TransformerLayer(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        dim, eps = cfg.hidden_size, cfg.rms_norm_eps
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = nn.RMSNorm(dim, eps=eps)
        self.post_attention_layernorm = nn.RMSNorm(dim, eps=eps)
        self.self_attn_layer_scale = LayerScale(dim, cfg.layer_scale_initial_scale)
        self.mlp_layer_scale = LayerScale(dim, cfg.layer_scale_initial_scale)

    def __call__(self, x: mx.array, mask, cache: RotatingKVCache | None = None) -> mx.array:
        x = x + self.self_attn_layer_scale(self.self_attn(self.input_layernorm(x), mask, cache))
        return x + self.mlp_layer_scale(self.mlp(self.post_attention_layernorm(x)))


class DecoderTransformer(StreamingModule):
    """latent -> hidden projection, RMSNorm/attention/SwiGLU layers, final norm, -> latent.

    Each query sees itself and the `sliding_window - 1` frames before it. `step` keeps one
    rotating cache per layer, so a stream holds at most `sliding_window - 1` past frames
    (plus the frames of the current call) whatever its length.
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.window = cfg.sliding_window
        self.input_proj = nn.Linear(cfg.latent_dim, cfg.hidden_size)
        self.layers = [TransformerLayer(cfg) for _ in range(cfg.num_hidden_layers)]
        self.norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.output_proj = nn.Linear(cfg.hidden_size, cfg.latent_dim)
        self._caches: list[RotatingKVCache] | None = None

    def _reset(self) -> None:
        self._caches = None

    def _forward(self, x: mx.array, mask, caches) -> mx.array:
        x = self.input_proj(x)
        for layer, cache in zip(self.layers, caches):
            x = layer(x, mask, cache)
        return self.output_proj(self.norm(x))

    def __call__(self, x: mx.array) -> mx.array:
        """x (B, T, latent) with positions 0..T-1 -> (B, T, latent)."""
        n = x.shape[1]
        mask = create_causal_mask(n, window_size=self.window) if n > self.window else "causal"
        return self._forward(x, mask, [None] * len(self.layers))

    def step(self, x: mx.array) -> mx.array:
        """The next frames of a stream, continuing its positions and attention window."""
        if x.shape[1] == 0:
            return x
        if self._caches is None:
            self._caches = [RotatingKVCache(max_size=self.window) for _ in self.layers]
        mask = self._caches[0].make_mask(x.shape[1], window_size=self.window)
        return self._forward(x, mask, self._caches)

    @property
    def caches(self) -> list[RotatingKVCache]:
        """The per-layer stream caches (empty before the first `step`)."""
        return self._caches or []
