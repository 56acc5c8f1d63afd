"""One decoder step for several streams at once, each with a KV cache of its own length.

The linear layers, norms and MLP run on all streams' rows together (on the CPU the small-M
kernel computes each row as it would alone); attention runs per stream, with that stream's
cache and positions, in exactly the shapes of a single stream's step. So every stream's
result is bit for bit what its own step would give.
"""

from __future__ import annotations

import mlx.core as mx
from mlx_lm.models.base import scaled_dot_product_attention


def attention_step(attn, x: mx.array, caches: list) -> mx.array:
    """mlx-lm's Qwen3 attention on rows `x` (B, 1, D), row i with `caches[i]`."""
    b, length, _ = x.shape
    queries = attn.q_norm(attn.q_proj(x).reshape(b, length, attn.n_heads, -1)).transpose(0, 2, 1, 3)
    keys = attn.k_norm(attn.k_proj(x).reshape(b, length, attn.n_kv_heads, -1)).transpose(0, 2, 1, 3)
    values = attn.v_proj(x).reshape(b, length, attn.n_kv_heads, -1).transpose(0, 2, 1, 3)
    outputs = []
    for i, cache in enumerate(caches):
        q = attn.rope(queries[i:i + 1], offset=cache.offset)
        k = attn.rope(keys[i:i + 1], offset=cache.offset)
        k, v = cache.update_and_fetch(k, values[i:i + 1])
        outputs.append(scaled_dot_product_attention(q, k, v, cache=cache, scale=attn.scale, mask=None))
    out = mx.concatenate(outputs) if len(outputs) > 1 else outputs[0]
    return attn.o_proj(out.transpose(0, 2, 1, 3).reshape(b, length, -1))


def block_step(block, x: mx.array, caches: list) -> mx.array:
    """mlx-lm's Qwen3 `TransformerBlock` on rows `x` (B, 1, D), row i with `caches[i]`."""
    h = x + attention_step(block.self_attn, block.input_layernorm(x), caches)
    return h + block.mlp(block.post_attention_layernorm(h))


def stack_step(stack, h: mx.array, caches: list[list]) -> mx.array:
    """A `DecoderStack` over rows `h` (B, 1, D); `caches[i]` is row i's list of layer caches."""
    if h.shape[1] != 1:
        raise ValueError(f"a batched step takes one position per stream, got {h.shape[1]}")
    for n, layer in enumerate(stack.layers):
        h = block_step(layer, h, [cache[n] for cache in caches])
    return stack.norm(h)
