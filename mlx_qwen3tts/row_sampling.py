"""Draws for a batch of streams: row i drawn exactly as its own `Sampler` would draw it alone.

Every stream keeps its own sampler settings and random keys. The shaping (temperature, top-k,
top-p) works row by row and runs on the whole group; the random draw is made per row, with the
row's key on its own (1, V) logits, as the stream alone would make it.
"""

from __future__ import annotations

import mlx.core as mx

from .sampling import Sampler


def _draw_group(sampler: Sampler, logits: mx.array, keys: mx.array | None) -> mx.array:
    if not sampler.do_sample:
        return sampler(logits)
    logits = sampler.shape(logits)
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
