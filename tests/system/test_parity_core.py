"""Talker, code predictor and generation against the official implementation (float32)."""

from __future__ import annotations

import logging

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.cache import KVCache

import mlx_qwen3tts
from reference import build_checkpoint, requires_reference, run_reference

pytestmark = [requires_reference, pytest.mark.parity]

TEXT = "Hello world, this is a tiny test of the speech model."
GREEDY = dict(temperature=0, subtalker_temperature=0, repetition_penalty=1.0, max_new_tokens=32)
REF_GREEDY = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0, max_new_tokens=32)


@pytest.fixture(scope="module")
def custom_voice():
    path = build_checkpoint("custom_voice", "proj", "1b7")
    return mlx_qwen3tts.load(path), path


@pytest.fixture(scope="module")
def custom_voice_small():
    path = build_checkpoint("custom_voice", "noproj", "0b6", seed=3)
    return mlx_qwen3tts.load(path), path


@pytest.fixture(scope="module")
def voice_design():
    path = build_checkpoint("voice_design", "mha", "1b7", seed=1)
    return mlx_qwen3tts.load(path), path


def teacher_forced_logits(tts, prompt, codes: np.ndarray):
    """Our talker logits for the prefill and each step, and code-predictor logits of frame 0,
    feeding the reference's codes back (so a difference cannot hide behind a divergence)."""
    talker = tts.model.talker
    cache = [KVCache() for _ in talker.model.layers]
    logits, hidden = talker(prompt.prefill, cache)
    steps = [logits[:, -1]]
    h0 = hidden[:, -1]
    for k, frame in enumerate(codes[:-1]):
        logits, _ = talker.feed(mx.array(frame)[None], prompt.text_at(k), cache)
        steps.append(logits)
    cp_logits = talker.forced_frame_logits(h0, mx.array(codes[:1]))[0]
    return np.concatenate([np.asarray(s) for s in steps]), np.asarray(cp_logits)


CV_CASES = {
    "nonstreaming": dict(speaker="vivian", language="english"),
    "streaming_text": dict(speaker="vivian", language="english", non_streaming_mode=False),
    "auto_dialect": dict(speaker="eric", language="auto"),
    "chinese_dialect": dict(speaker="dylan", language="chinese", non_streaming_mode=False),
    "instruct": dict(speaker="ryan", language="english", instruct="Speak happily and fast."),
    "auto_plain": dict(speaker="serena", language="auto"),
}


def assert_matches_reference(tts, ref, method: str, kw: dict) -> None:
    """Prompt vectors, greedy codes, and teacher-forced talker and code-predictor logits."""
    rec = run_reference(ref, method, TEXT, **kw, **REF_GREEDY)
    request = tts.prepare(TEXT, **kw)
    np.testing.assert_allclose(np.asarray(request.prompt.prefill), rec.prefill, atol=1e-5)
    np.testing.assert_allclose(np.asarray(request.prompt.trailing), rec.trailing[0][:len(request.prompt.trailing)],
                               atol=1e-5)
    ours = tts.generate_codes(TEXT, **kw, **GREEDY)
    assert ours.shape == rec.codes.shape and ours.shape[0] >= 30
    np.testing.assert_array_equal(ours, rec.codes)
    talker_logits, cp_logits = teacher_forced_logits(tts, request.prompt, rec.codes)
    np.testing.assert_allclose(talker_logits, rec.talker_logits[:len(talker_logits)], atol=1e-4)
    np.testing.assert_allclose(cp_logits, rec.cp_logits[:15], atol=1e-4)


@pytest.mark.parametrize("case", list(CV_CASES))
def test_custom_voice_matches_reference(custom_voice, case):
    assert_matches_reference(*custom_voice, "generate_custom_voice", CV_CASES[case])


def greedy_pair(tts, ref, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Our greedy codes and the reference's for the same CustomVoice request."""
    rec = run_reference(ref, "generate_custom_voice", TEXT, **{**REF_GREEDY, **kw})
    return tts.generate_codes(TEXT, **{**GREEDY, **kw}), rec.codes


def test_repetition_penalty_greedy_matches_reference(custom_voice):
    ours, theirs = greedy_pair(*custom_voice, speaker="aiden", language="english", repetition_penalty=1.3)
    # The penalty pushes audio codes down until EOS wins: both must stop on the same frame.
    assert 10 <= ours.shape[0] < 31
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("non_streaming_mode", [True, False])
def test_small_custom_voice_drops_instruct_like_reference(custom_voice_small, non_streaming_mode, caplog):
    """0.6B-style: no projection in the code predictor; instruct is dropped with a warning."""
    tts, ref = custom_voice_small
    assert "small_to_mtp_projection" not in tts.model.talker.code_predictor
    kw = dict(speaker="sohee", language="korean", non_streaming_mode=non_streaming_mode)
    rec = run_reference(ref, "generate_custom_voice", TEXT, instruct="Whisper.", **kw, **REF_GREEDY)
    with caplog.at_level(logging.WARNING, logger="mlx_qwen3tts"):
        ours = tts.generate_codes(TEXT, instruct="Whisper.", **kw, **GREEDY)
    assert "instruct" in caplog.text
    assert ours.shape[0] >= 30
    np.testing.assert_array_equal(ours, rec.codes)


VD_CASES = {
    "nonstreaming": dict(instruct="A calm, deep male voice.", language="english"),
    "streaming_text": dict(instruct="A calm, deep male voice.", language="english", non_streaming_mode=False),
    "auto": dict(instruct="A bright young voice, speaking quickly.", language="auto"),
    "no_instruct": dict(instruct="", language="french"),
}


@pytest.mark.parametrize("case", list(VD_CASES))
def test_voice_design_matches_reference(voice_design, case):
    assert_matches_reference(*voice_design, "generate_voice_design", VD_CASES[case])


def test_max_new_tokens_has_reference_meaning(custom_voice):
    ours, theirs = greedy_pair(*custom_voice, speaker="vivian", language="english", max_new_tokens=5)
    assert ours.shape == theirs.shape == (4, 16)
    np.testing.assert_array_equal(ours, theirs)
