"""The decoder transformer: sliding window, streaming == offline, bounded stream cache."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from codec_helpers import CHUNKS, max_diff, randomize, stream, tiny_config

from mlx_qwen3tts.codec.transformer import DecoderTransformer


def _transformer(seed: int = 0, **overrides) -> DecoderTransformer:
    return randomize(DecoderTransformer(tiny_config(**overrides)), seed)


def _inputs(frames: int, batch: int = 2, dim: int = 16, seed: int = 0) -> mx.array:
    return mx.array(np.random.default_rng(seed).standard_normal((batch, frames, dim)).astype(np.float32))


@pytest.mark.parametrize("overrides", [{}, {"num_key_value_heads": 1}, {"sliding_window": 1}])
def test_streaming_equals_offline(overrides):
    model = _transformer(**overrides)
    x = _inputs(29)
    full = model(x)
    for chunk in CHUNKS:
        assert max_diff(stream(model, x, chunk), full) < 1e-5, f"chunk {chunk}"


def test_mixed_chunk_sizes_stream():
    model = _transformer(1)
    x = _inputs(40)
    full = model(x)
    model.reset_state()
    pieces, start = [], 0
    for n in (1, 8, 1, 1, 5, 2, 8, 3, 1, 7, 3):
        pieces.append(model.step(x[:, start : start + n]))
        start += n
    assert start == 40
    assert max_diff(mx.concatenate(pieces, axis=1), full) < 1e-5


def test_causal_and_windowed():
    model = _transformer(2, sliding_window=4)
    x = _inputs(20)
    full = model(x)
    assert max_diff(model(x[:, :11]), full[:, :11]) < 1e-5
    # A frame more than `window - 1` steps back reaches a query only through earlier
    # layers: with one layer, changing frame 0 leaves frames >= 4 untouched.
    one = _transformer(2, sliding_window=4, num_hidden_layers=1)
    y = x.at[:, 0].add(3.0)
    a, b = one(x), one(y)
    assert max_diff(a[:, 4:], b[:, 4:]) < 1e-6
    assert max_diff(a[:, 3:4], b[:, 3:4]) > 1e-4


def test_stream_cache_stays_bounded():
    model = _transformer(3, num_hidden_layers=1, sliding_window=6)
    model.reset_state()
    x = _inputs(1, batch=1)
    for _ in range(2000):
        mx.eval(model.step(x))
    (cache,) = model.caches
    assert cache.offset == 2000
    assert cache.keys.shape[2] <= 6 and cache.values.shape[2] <= 6
    for _ in range(30):
        mx.eval(model.step(_inputs(8, batch=1)))
    assert cache.offset == 2240
    assert cache.keys.shape[2] <= 6 - 1 + 8


def test_reset_state_restarts_positions():
    model = _transformer(4)
    x = _inputs(5)
    first = stream(model, x, 2)
    model.step(x)
    assert model.caches[0].offset == 10
    assert max_diff(stream(model, x, 2), first) == 0.0
