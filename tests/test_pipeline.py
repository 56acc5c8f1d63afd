"""The pipeline's stages and rules: the multi-segment fault rule, in-place cuts, caches that
survive a model reload, and one source for the tiny checkpoints (tiny models, no torch)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts.audio import AudioChunk
from mlx_qwen3tts.testing import make_checkpoint
from mlx_qwen3tts.guards import Guards
from mlx_qwen3tts.pipeline import Frames
from mlx_qwen3tts.trim import cut_faults
from mlx_qwen3tts.prompt import tokenize
from mlx_qwen3tts.request import voice_frames
from mlx_qwen3tts.text import TextFeed, segment_tokens
from mlx_qwen3tts.voice import Voice
from tiny import make_tiny_checkpoint

GREEDY = dict(speaker="vivian", temperature=0, subtalker_temperature=0)
TWO_SENTENCES = "hello world, this is the first one. And here comes the second sentence."


@pytest.fixture(scope="module")
def stuck(tmp_path_factory):
    """All logits tie, so greedy drawing always picks code 0: one sound for ever."""
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("stuck") / "cv", seed=3)
    weights = mx.load(str(folder / "model.safetensors"))
    weights["talker.codec_head.weight"] = mx.zeros(weights["talker.codec_head.weight"].shape)
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    return mlx_qwen3tts.load(folder)


@pytest.fixture(scope="module")
def tts(tiny_tts):
    return tiny_tts


def test_a_fault_ends_its_segment_and_the_next_one_runs(stuck):
    guards = Guards(repeat_frames=12)
    kw = dict(**GREEDY, max_new_tokens=300, guards=guards, max_segment_tokens=25)
    assert len(segment_tokens(stuck.tokenizer, TWO_SENTENCES, 25)) == 2
    chunks = list(stuck.stream(TWO_SENTENCES, **kw))
    ends = [c for c in chunks if c.segment_end]
    # Both segments spoke until their own fault: 12 stuck frames each, back to back.
    assert [c.bad_frames for c in ends] == [12, 12] and chunks[-1].frames == 24
    assert chunks[-1].is_last and chunks[-1].finish_reason == "repetition"
    audio = stuck.generate(TWO_SENTENCES, **kw)
    assert audio.finish_reason == "repetition" and len(audio.codes) == 24
    assert len(audio.samples) == 0  # each segment's stuck sound was cut where it was


def test_cut_faults_removes_a_segments_bad_frames_in_place():
    f = 1920

    def chunk(i, frames, marker, is_last=False, **kw):
        return AudioChunk(np.full(frames * f, marker, np.float32), 24000, i, is_last, 0, 0.0, **kw)

    chunks = [chunk(0, 2, 1.0), chunk(1, 2, 2.0, segment_end=True, bad_frames=3),
              chunk(2, 1, 3.0), chunk(3, 2, 4.0, segment_end=True, is_last=True)]
    out = np.concatenate([c.samples for c in cut_faults(iter(chunks))])
    # Segment 1 keeps its first frame; segment 2 (no fault) is whole.
    np.testing.assert_array_equal(out, np.concatenate([np.full(f, 1.0), np.full(f, 3.0), np.full(2 * f, 4.0)]))


def test_a_fault_found_downstream_ends_the_segment_at_the_next_frame(tts):
    request = tts._request(tts.options(**GREEDY, max_new_tokens=60, max_segment_tokens=25), TWO_SENTENCES)
    feed = TextFeed(TWO_SENTENCES)
    feed.bind(tts.tokenizer, 25)
    frames = Frames(tts.model.talker, tts.config, request, feed, Guards())
    seen = []
    for frame in frames:
        seen.append(frame)
        if frame.segment == 0 and frame.index == 4:
            frames.end_segment("silence", 3)
        if frame.is_last:
            break
    first_end = next(f for f in seen if f.segment_end)
    assert first_end.index == 5 and first_end.bad_frames == 4  # the 3 silent frames and this one
    assert any(f.segment == 1 and f.codes is not None for f in seen)  # the next segment still ran
    assert seen[-1].is_last and seen[-1].finish_reason == "silence"


def test_a_voice_kept_across_a_model_reload_is_embedded_anew(tmp_path):
    codes = np.random.default_rng(0).integers(0, 2048, (6, 16)).astype(np.int32)
    voice = Voice(np.zeros(32, np.float32), codes, "hi", (1, 2))
    first = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "a", seed=1)).model.talker
    a = np.asarray(voice_frames(first, voice))
    np.testing.assert_allclose(a, np.asarray(first.embed_frame(mx.array(codes))), atol=1e-6)
    del first  # its memory (and its id()) may go to the next model
    second = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "b", seed=2)).model.talker
    b = np.asarray(voice_frames(second, voice))
    np.testing.assert_allclose(b, np.asarray(second.embed_frame(mx.array(codes))), atol=1e-6)
    assert np.abs(a - b).max() > 1e-3 and len(voice.prompt_cache) == 2


def test_the_bench_checkpoint_prompts_like_the_real_tokenizer(tmp_path):
    bench = mlx_qwen3tts.load(make_checkpoint("tiny", "custom_voice", tmp_path / "bench"))
    tests = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "tests"))
    text = "Hello there. This is a short benchmark sentence, read out loud at an even pace."
    for tts in (bench, tests):
        ids = tokenize(tts.tokenizer, text)
        # The role is whole: "assistant" one token, then the newline; the text starts after it.
        assert ids.role == (151644, tts.tokenizer._tok.token_to_id("assistant"), tts.tokenizer.encode("\n")[0])
        assert tts.tokenizer._tok.decode(list(ids.text)) == text
        assert len(ids.text) == len(tts.tokenizer.encode(text))
    assert tokenize(bench.tokenizer, text) == tokenize(tests.tokenizer, text)
