"""Draws for a batch of streams: row i drawn exactly as its own `Sampler` would draw it alone.

Every stream keeps its own sampler settings and random keys. The shaping (temperature, top-k,
top-p) works row by row and runs on the whole group; the random draw is made per row, with the
row's key on its own (1, V) logits, as the stream alone would make it.
"""

from __future__ import annotations

import mlx.core as mx
from mlx_lm.sample_utils import apply_top_k, apply_top_p

from .sampling import Sampler


def _shape(sampler: Sampler, logits: mx.array) -> mx.array:
    """The sampler's temperature, top-k and top-p on rows of logits (each row on its own)."""
    logits = logits.astype(mx.float32) * (1.0 / sampler.temperature)
    if 0 < sampler.top_k < logits.shape[-1]:
        logits = apply_top_k(logits, int(sampler.top_k))
    if 0 < sampler.top_p < 1.0:
        logits = apply_top_p(logits - mx.logsumexp(logits, axis=-1, keepdims=True), sampler.top_p)
    return logits


def _draw_group(sampler: Sampler, logits: mx.array, keys: mx.array | None) -> mx.array:
    if not sampler.do_sample:
        return mx.argmax(logits, axis=-1).astype(mx.int32)
    logits = _shape(sampler, logits)
    draws = [mx.random.categorical(logits[i:i + 1], key=keys[i]) for i in range(logits.shape[0])]
    return (mx.concatenate(draws) if len(draws) > 1 else draws[0]).astype(mx.int32)


def draw_rows(samplers: tuple[Sampler, ...], logits: mx.array, keys: mx.array | None) -> mx.array:
    """(B, V) logits, row i with `samplers[i]` and key `keys[i]` -> (B,) int32 tokens.

    Rows with equal samplers are drawn together; `keys` may be None when no sampler samples.
    """
    groups: dict[Sampler, list[int]] = {}
    for i, sampler in enumerate(samplers):
        groups.setdefault(sampler, []).append(i)
    if len(groups) == 1:
        return _draw_group(samplers[0], logits, keys)
    parts, order = [], []
    for sampler, rows in groups.items():
        index = mx.array(rows)
        parts.append(_draw_group(sampler, logits[index], None if keys is None else keys[index]))
        order += rows
    inverse = mx.array(sorted(range(len(order)), key=order.__getitem__))
    return mx.concatenate(parts)[inverse]


class RowDraw:
    """`draw_rows` for one make-up of row samplers, as a callable `(logits, keys) -> tokens`."""

    def __init__(self, samplers: tuple[Sampler, ...]):
        self.samplers = samplers

    def __call__(self, logits: mx.array, keys: mx.array | None) -> mx.array:
        return draw_rows(self.samplers, logits, keys)
