"""Logit processing and sampling in the reference's order."""

import mlx.core as mx
import numpy as np
import pytest

from mlx_qwen3tts.sampling import Sampler, TalkerLogitsProcessor

EOS = 2150


def processor(penalty=1.05):
    return TalkerLogitsProcessor(vocab_size=3072, eos_id=EOS, audio_vocab=2048, repetition_penalty=penalty)


def test_suppresses_non_audio_rows_but_eos():
    p = processor()
    p.update(mx.array([1]))
    p.update(mx.array([2]))
    out = np.asarray(p(mx.zeros((1, 3072))))[0]
    assert np.isneginf(out[2048:]).sum() == 1023 and np.isfinite(out[EOS]) and np.isfinite(out[:2048]).all()


def test_eos_banned_for_first_two_tokens():
    p = processor()
    logits = mx.zeros((1, 3072))
    assert np.isneginf(np.asarray(p(logits))[0, EOS])
    p.update(mx.array([5]))
    assert np.isneginf(np.asarray(p(logits))[0, EOS])
    p.update(mx.array([6]))
    assert np.isfinite(np.asarray(p(logits))[0, EOS])


def test_repetition_penalty_is_sign_aware_and_counts_each_token_once():
    p = processor(penalty=2.0)
    for t in (7, 7, 7, 9):
        p.update(mx.array([t]))
    logits = np.zeros((1, 3072), np.float32)
    logits[0, 7], logits[0, 9], logits[0, 11] = 3.0, -3.0, 3.0
    out = np.asarray(p(mx.array(logits)))[0]
    assert out[7] == 1.5 and out[9] == -6.0 and out[11] == 3.0


def test_greedy_is_argmax():
    logits = mx.array([[0.1, 2.0, -1.0], [5.0, 1.0, 4.9]])
    assert Sampler(do_sample=False)(logits).tolist() == [1, 0]


def test_top_k_only_draws_from_the_k_best():
    rng = np.random.default_rng(0)
    logits = mx.array(rng.normal(size=(1, 2048)).astype(np.float32))
    best = set(np.argsort(-np.asarray(logits)[0])[:3].tolist())
    draw = Sampler(temperature=5.0, top_k=3)
    keys = mx.random.split(mx.random.key(0), 200)
    drawn = {int(draw(logits, k)[0]) for k in keys}
    assert drawn <= best and len(drawn) == 3


def test_top_p_keeps_the_nucleus_after_temperature():
    logits = mx.log(mx.array([[0.5, 0.3, 0.15, 0.05]]))
    draw = Sampler(temperature=1.0, top_k=0, top_p=0.7)
    drawn = {int(draw(logits, k)[0]) for k in mx.random.split(mx.random.key(1), 300)}
    assert drawn == {0, 1}


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_the_distribution(temperature):
    logits = mx.array([[0.0, 1.0]])
    draw = Sampler(temperature=temperature, top_k=0)
    n = 4000
    ones = sum(int(t) for t in draw(mx.broadcast_to(logits, (n, 2)), mx.random.key(2)).tolist())
    expected = 1 / (1 + np.exp(-1.0 / temperature))
    assert abs(ones / n - expected) < 0.03


def test_seeded_draws_repeat():
    logits = mx.random.normal((1, 2048), key=mx.random.key(3))
    a = [int(Sampler()(logits, k)[0]) for k in mx.random.split(mx.random.key(9), 10)]
    b = [int(Sampler()(logits, k)[0]) for k in mx.random.split(mx.random.key(9), 10)]
    assert a == b and len(set(a)) > 1
