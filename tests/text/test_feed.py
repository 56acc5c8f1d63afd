"""Live text: pieces in as they are written give exactly the codes of the whole text, in every
mode; flush, cancel, a slow producer, and a long stream (official tiny checkpoints)."""

from __future__ import annotations

import random
import threading
import time

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts import TextFeed
from reference import build_checkpoint, requires_reference, write_speechlike_wav

pytestmark = [requires_reference]

# A decomposed é (e + U+0301), a number, emoji with a skin tone and a ZWJ family, and Chinese
# without spaces: pieces may end inside any of them.
TEXT = ("Cafe\u0301 at 3.14 pm, we met the Smiths 👍🏽 and 👨‍👩‍👧 again! "
        "The weather was lovely, so we walked along the river. 你好世界，今天天气很好。")
GREEDY = dict(temperature=0, subtalker_temperature=0, max_new_tokens=40)
SAMPLED = dict(seed=7, max_new_tokens=40)
REF_TEXT = "Hello, this is a short reference recording."


def per_char(text):
    return list(text)


def per_word(text):
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def random_split(seed):
    def split(text):
        rng, out, i = random.Random(seed), [], 0
        while i < len(text):
            n = rng.choice([0, 1, 1, 2, 3, 5, 8])
            out.append(text[i:i + n])
            i += n
        return out
    return split


def inside_everything(text):
    """Cuts between e and its combining mark, inside the emoji sequences, the number and a word,
    with empty and whitespace-only pieces between."""
    cuts = sorted({text.index("\u0301"), text.index("\U0001F3FD"), text.index("\u200d") + 1,
                   text.index(".14"), text.index("ather"), text.index("世")})
    pieces, start = [], 0
    for c in cuts:
        pieces += [text[start:c], "", " " if text[c - 1] == " " else ""]
        start = c
    return [p for p in pieces if p is not None] + [text[start:]]


SPLITS = {"char": per_char, "word": per_word, "random1": random_split(1), "random2": random_split(2),
          "inside": inside_everything}


@pytest.fixture(scope="module")
def custom_voice():
    return mlx_qwen3tts.load(build_checkpoint("custom_voice", "proj", "1b7"))


@pytest.fixture(scope="module")
def voice_design():
    return mlx_qwen3tts.load(build_checkpoint("voice_design", "mha", "1b7", seed=1))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tts = mlx_qwen3tts.load(build_checkpoint("base", "proj", "0b6", seed=2))
    wav = write_speechlike_wav(tmp_path_factory.mktemp("ref") / "ref.wav", seconds=2.3)
    return tts, tts.clone_voice(wav, x_vector_only=True), tts.clone_voice(wav, REF_TEXT)


def modes(custom_voice, voice_design, base):
    tts_base, xvec, icl = base
    return {
        "custom_voice": (custom_voice, dict(speaker="vivian", language="english")),
        "voice_design": (voice_design, dict(instruct="A calm, deep voice.", language="auto")),
        "base_x_vector": (tts_base, dict(voice=xvec, language="english")),
        "base_in_context": (tts_base, dict(voice=icl, language="english")),
    }


@pytest.mark.parametrize("mode", ["custom_voice", "voice_design", "base_x_vector", "base_in_context"])
@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("sampling", ["greedy", "sampled"])
def test_live_pieces_give_the_whole_texts_codes(custom_voice, voice_design, base, mode, split, sampling):
    tts, kw = modes(custom_voice, voice_design, base)[mode]
    kw = {**kw, **(GREEDY if sampling == "greedy" else SAMPLED), "non_streaming_mode": False}
    pieces = SPLITS[split](TEXT)
    assert "".join(pieces) == TEXT
    whole = tts.generate_codes(TEXT, **kw)
    assert len(whole) >= 20
    np.testing.assert_array_equal(tts.generate_codes(iter(pieces), **kw), whole)


def slow(pieces, pause=0.01):
    for p in pieces:
        time.sleep(pause)
        yield p


@pytest.mark.parametrize("mode", ["custom_voice", "base_in_context"])
def test_a_producer_slower_than_the_loop_changes_nothing(custom_voice, voice_design, base, mode):
    tts, kw = modes(custom_voice, voice_design, base)[mode]
    kw = {**kw, **SAMPLED, "non_streaming_mode": False}
    chunks = list(tts.stream(slow(per_word(TEXT), 0.05), **kw))
    whole = list(tts.stream(TEXT, **kw))
    np.testing.assert_array_equal(np.concatenate([c.codes for c in chunks]),
                                  np.concatenate([c.codes for c in whole]))
    np.testing.assert_allclose(np.concatenate([c.samples for c in chunks]),
                               np.concatenate([c.samples for c in whole]), atol=1e-5)


def test_a_feed_written_from_another_thread(custom_voice):
    kw = dict(speaker="vivian", language="english", **GREEDY, non_streaming_mode=False)
    feed = TextFeed()

    def produce():
        for piece in per_word(TEXT):
            feed.write(piece)
            time.sleep(0.005)
        feed.close()

    threading.Thread(target=produce).start()
    np.testing.assert_array_equal(custom_voice.generate_codes(feed, **kw), custom_voice.generate_codes(TEXT, **kw))


FIRST, SECOND = "The first thing to say, at some length.", "And then a second one."


def test_flush_speaks_two_utterances_through_one_decoder(custom_voice):
    tts = custom_voice
    kw = dict(speaker="vivian", language="english", **SAMPLED, non_streaming_mode=False)
    feed = TextFeed()
    for piece in per_word(FIRST):
        feed.write(piece)
    feed.flush()
    for piece in per_word(SECOND):
        feed.write(piece)
    feed.close()
    chunks = list(tts.stream(feed, **kw))
    # The two utterances are marked, each with its own end and reason.
    assert sorted({c.utterance for c in chunks}) == [0, 1]
    ends = [c for c in chunks if c.end_of_utterance]
    assert [c.utterance for c in ends] == [0, 1] and all(c.finish_reason for c in ends)
    codes = np.concatenate([c.codes for c in chunks])
    first = tts.generate_codes(FIRST, **kw)
    second = tts.generate_codes(SECOND, **{**kw, "seed": kw["seed"] + 1})  # the stream's next segment
    np.testing.assert_array_equal(codes, np.concatenate([first, second]))
    # One continuous decoder: the audio is the whole code sequence decoded at once.
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, tts.decode(codes, full_causal=True), atol=1e-5)


def test_cancel_stops_within_a_frame_and_leaves_the_tts_ready(custom_voice):
    tts = custom_voice
    kw = dict(speaker="vivian", language="english", temperature=0, subtalker_temperature=0,
              max_new_tokens=2000, non_streaming_mode=False, guards=False)
    feed = TextFeed("word " * 200)
    frames_at_cancel, chunks = None, []
    for chunk in tts.stream(feed, chunk_frames=1, **kw):
        chunks.append(chunk)
        if chunk.frames == 10:
            frames_at_cancel = chunk.frames
            feed.cancel()
    assert chunks[-1].is_last and chunks[-1].finish_reason == "cancelled"
    assert chunks[-1].frames <= frames_at_cancel + 1  # at most the frame already in flight
    again = tts.generate("Hello again.", speaker="vivian", max_new_tokens=5)
    assert again.finish_reason in ("eos", "max_new_tokens") and len(again.codes) == 4


def test_leaving_a_live_stream_stops_its_producer_and_generation(custom_voice):
    feed = TextFeed()
    feed.write("hello there, this goes on and on ")
    stream = custom_voice.stream(feed, speaker="vivian", non_streaming_mode=False, max_new_tokens=200)
    next(stream)
    stream.close()
    assert feed.cancelled
    with pytest.raises(RuntimeError, match="closed"):
        feed.write("more")
    assert len(custom_voice.generate_codes("Next.", speaker="vivian", max_new_tokens=4)) == 3


def test_a_live_input_with_nothing_to_say_is_an_error(custom_voice):
    with pytest.raises(ValueError, match="text is empty"):
        custom_voice.generate_codes(iter(["...", " ", "?!"]), speaker="vivian")


def test_a_producer_error_reaches_the_reader(custom_voice):
    def broken():
        yield "Hello there, "
        raise OSError("the pipe broke")

    with pytest.raises(OSError, match="the pipe broke"):
        list(custom_voice.stream(broken(), speaker="vivian", non_streaming_mode=False, max_new_tokens=50))


def test_memory_stays_flat_over_a_long_live_stream(custom_voice):
    """Thousands of frames through one stream: nothing grows with its length."""
    feed = TextFeed()
    sentences = [f"Sentence number {i} is here." for i in range(400)]

    def produce():
        for s in sentences:
            feed.write(s + " ")
        feed.close()

    threading.Thread(target=produce).start()
    active = {}
    for chunk in custom_voice.stream(feed, speaker="vivian", non_streaming_mode=False, max_new_tokens=25,
                                     max_segment_tokens=20, chunk_frames=8, guards=False, seed=0):
        for mark in (800, 2400):
            if mark not in active and chunk.frames >= mark:
                active[mark] = mx.get_active_memory()
    assert chunk.frames >= 2400
    assert active[2400] <= active[800] * 1.10, active


def test_live_text_reads_in_the_streaming_layout_by_default(custom_voice):
    kw = dict(speaker="vivian", language="english", **GREEDY)
    live = custom_voice.generate_codes(iter(per_word(TEXT)), **kw)
    np.testing.assert_array_equal(live, custom_voice.generate_codes(TEXT, **kw, non_streaming_mode=False))
    # A whole text keeps the official default for a preset voice: its text sits in the prompt.
    assert not np.array_equal(custom_voice.generate_codes(TEXT, **kw), live)
