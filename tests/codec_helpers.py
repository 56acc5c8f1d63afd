"""Shared pieces for the codec tests: tiny configs, seeded weights, chunked streaming."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from mlx_qwen3tts.codec import DecoderConfig, SpeechDecoder

CHUNKS = (1, 2, 3, 5, 8)


def tiny_config(**overrides) -> DecoderConfig:
    """A decoder small enough to run in milliseconds, with every stage present."""
    values = dict(
        codebook_size=64, codebook_dim=16, latent_dim=16, decoder_dim=32, hidden_size=16,
        intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, sliding_window=6, num_quantizers=4, upsample_rates=[3, 2, 2, 2],
        upsampling_ratios=[2, 2],
    )
    values.update(overrides)
    return DecoderConfig(**values)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Replaces every parameter with seeded values of a size that keeps signals O(1)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, p in tree_flatten(module.parameters()):
        if p.ndim == 1:
            v = 1.0 + 0.1 * rng.standard_normal(p.shape) if "norm" in name else 0.3 * rng.standard_normal(p.shape)
        else:
            fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 1
            v = rng.standard_normal(p.shape) / math.sqrt(fan_in)
        params[name] = mx.array(v.astype(np.float32))
    module.update(tree_unflatten(list(params.items())))
    mx.eval(module.parameters())
    return module


def random_decoder(seed: int = 0, **overrides) -> SpeechDecoder:
    decoder = randomize(SpeechDecoder(tiny_config(**overrides)), seed)
    # Random residual stacks grow the signal block by block, and SnakeBeta turns a large
    # signal chaotic (rounding noise then swamps any comparison); keep each block near unit
    # gain and the waveform mostly inside [-1, 1] (a clipped sample proves little).
    for block in decoder.vocoder[1:-2]:
        for unit in block.block[2:]:
            unit.conv2.conv.weight = unit.conv2.conv.weight * 0.2
            unit.conv2.conv.bias = unit.conv2.conv.bias * 0.2
    last = decoder.vocoder[-1].conv
    last.weight = last.weight * 0.3
    decoder.eval()
    return decoder


def random_codes(batch: int, frames: int, num_quantizers: int, size: int, seed: int = 0) -> mx.array:
    rng = np.random.default_rng(seed)
    return mx.array(rng.integers(0, size, size=(batch, frames, num_quantizers)).astype(np.int32))


def stream(layer, x: mx.array, chunk: int, axis: int = 1) -> mx.array:
    """Feeds `x` to `layer.step` in pieces of `chunk` frames and joins the outputs."""
    layer.reset_state()
    n = x.shape[axis]
    pieces = []
    for start in range(0, n, chunk):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, min(start + chunk, n))
        out = layer.step(x[tuple(index)])
        mx.eval(out)
        pieces.append(out)
    return mx.concatenate(pieces, axis=axis)


def max_diff(a: mx.array, b: mx.array) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(np.array(a, dtype=np.float64) - np.array(b, dtype=np.float64)).max())
