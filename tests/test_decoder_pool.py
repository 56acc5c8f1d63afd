"""The decoder pool: a stream's decoder state is its own, every decoder shares one set of weights,
and a decoder given back starts its next stream afresh (tiny checkpoint)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from mlx_qwen3tts.codec import load_speech_decoder
from mlx_qwen3tts.decoder_pool import DecoderPool


@pytest.fixture(scope="module")
def decoder(tiny_folder):
    """The tiny codec with random codebooks (its own are zeros): each code sequence sounds its own."""
    decoder = load_speech_decoder(tiny_folder("custom_voice") / "speech_tokenizer")
    key = mx.random.key(7)
    books = [(k, mx.random.normal(v.shape, key=mx.random.split(key, i + 2)[i + 1]))
             for i, (k, v) in enumerate(tree_flatten(decoder.parameters())) if k.endswith("codebooks")]
    decoder.update(tree_unflatten(books))
    mx.eval(decoder.parameters())
    return decoder


def codes(seed: int, frames: int = 6) -> mx.array:
    return mx.array(np.random.default_rng(seed).integers(0, 2048, (1, frames, 16)).astype(np.int32))


def streamed(decoder, x: mx.array) -> np.ndarray:
    return np.concatenate([np.asarray(decoder.step(x[:, i:i + 2])[0]) for i in range(0, x.shape[1], 2)])


def test_a_second_decoder_shares_the_weights_and_keeps_its_own_state(decoder):
    pool = DecoderPool(decoder)
    first, second = pool.take(), pool.take()
    assert first is decoder and second is not first and pool.made == 2
    shared = {k: v for k, v in tree_flatten(first.parameters())}
    assert all(v is shared[k] for k, v in tree_flatten(second.parameters()))
    a, b = codes(1), codes(2)
    alone_a, alone_b = streamed(first, a), streamed(second, b)
    assert not np.allclose(alone_a, alone_b)  # so a stream reading the other's state would show
    pool.give(first)
    pool.give(second)
    # Two streams stepped in turn give what each gives alone.
    one, two = pool.take(), pool.take()
    parts_a, parts_b = [], []
    for i in range(0, a.shape[1], 2):
        parts_a.append(np.asarray(one.step(a[:, i:i + 2])[0]))
        parts_b.append(np.asarray(two.step(b[:, i:i + 2])[0]))
    np.testing.assert_array_equal(np.concatenate(parts_a), alone_a)
    np.testing.assert_array_equal(np.concatenate(parts_b), alone_b)
    pool.give(one)
    pool.give(two)


def test_a_decoder_given_back_starts_afresh_and_is_reused(decoder):
    pool = DecoderPool(decoder)
    taken = pool.take()
    x = codes(3)
    first = streamed(taken, x)
    pool.give(taken)
    again = pool.take()
    assert again is taken and pool.made == 1
    np.testing.assert_array_equal(streamed(again, x), first)
    pool.give(again)
