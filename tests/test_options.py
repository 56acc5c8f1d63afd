"""`SpeechOptions`: every bad value refused with a message naming the option, its range and what to
do, the same through the library and through the server (a 400 naming the field); the text
layout's default; one object reused across calls."""

from __future__ import annotations

import logging
from dataclasses import FrozenInstanceError

import httpx
import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts import OptionError, SpeechOptions
from serving import TEXT, speaking_checkpoint
from serving import server, tts  # noqa: F401  (fixtures)

# (keywords, error type, option named, words in the message)
LIBRARY = [
    (dict(temperature=-1), ValueError, "temperature",
     "temperature must be a number from 0 up (0 is greedy), got -1: pass 0 for greedy decoding"),
    (dict(temperature=float("nan")), ValueError, "temperature", "temperature must be a number from 0 up"),
    (dict(top_p=0), ValueError, "top_p", "top_p must be a number above 0 and at most 1, got 0"),
    (dict(top_p=1.5), ValueError, "top_p", "top_p must be a number above 0 and at most 1, got 1.5"),
    (dict(top_k=-3), ValueError, "top_k", "top_k must be an integer of 0 (off) or more, got -3"),
    (dict(top_k=2.5), TypeError, "top_k", "top_k must be an integer of 0 (off) or more, got 2.5"),
    (dict(repetition_penalty=0), ValueError, "repetition_penalty",
     "repetition_penalty must be a number above 0 (1 is off), got 0"),
    (dict(max_new_tokens=-5), ValueError, "max_new_tokens",
     "max_new_tokens must be an integer of 1 or more (codec frames, 12.5 per second), got -5"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens", "max_new_tokens must be an integer of 1 or more"),
    (dict(subtalker_temperature=-0.5), ValueError, "subtalker_temperature",
     "subtalker_temperature must be a number from 0 up (0 is greedy), got -0.5"),
    (dict(subtalker_top_k=-1), ValueError, "subtalker_top_k", "subtalker_top_k must be an integer of 0 (off)"),
    (dict(subtalker_top_p=2), ValueError, "subtalker_top_p", "subtalker_top_p must be a number above 0 and at most 1"),
    (dict(speed=0.1), ValueError, "speed", "speed must be a number from 0.25 to 4.0, got 0.1: 1.0 is the model's own pace"),
    (dict(speed=5), ValueError, "speed", "speed must be a number from 0.25 to 4.0, got 5"),
    (dict(speed="fast"), TypeError, "speed", 'speed must be a number from 0.25 to 4.0, got "fast"'),
    (dict(seed=-1), ValueError, "seed", "seed must be an integer from 0 to 2147483647, got -1"),
    (dict(seed="7"), TypeError, "seed", 'seed must be an integer from 0 to 2147483647, got "7"'),
    (dict(seed=True), TypeError, "seed", "seed must be an integer from 0 to 2147483647, got true"),
    (dict(speaker="nobody"), ValueError, "speaker", "unknown speaker 'nobody'; choose one of: eric, vivian"),
    (dict(speaker=None), ValueError, "speaker", "this CustomVoice model needs a speaker; choose one of: eric, vivian"),
    (dict(speaker=3), TypeError, "speaker", "speaker must be a string (or None), got 3"),
    (dict(language="klingon"), ValueError, "language", "unknown language 'klingon'; choose one of: auto, chinese, english"),
    (dict(language=5), TypeError, "language", "language must be a string (or None), got 5"),
    (dict(instruct=["calm"]), TypeError, "instruct", "instruct must be a string (or None)"),
    (dict(voice="me.voice"), ValueError, "voice", "voice= needs a Base model; this custom_voice model uses speaker="),
    (dict(voice=42), TypeError, "voice", "voice must be a Voice (tts.clone_voice(...)) or a voice file's path"),
    (dict(text_layout="poem"), ValueError, "text_layout",
     'unsupported text_layout "poem"; choose streaming (the model reads the text as it speaks), whole'),
    (dict(decode="fast"), ValueError, "decode", 'unsupported decode "fast"; choose stream'),
    (dict(max_segment_tokens=1), ValueError, "max_segment_tokens", "max_segment_tokens must be an integer of 2 or more"),
    (dict(guards="yes"), TypeError, "guards", "guards must be True, False or a Guards(...), got str"),
    (dict(chunk_frames=(1, 0)), ValueError, "chunk_frames", "chunk_frames must be a positive frame count"),
    (dict(chunk_frames=()), ValueError, "chunk_frames", "got an empty sequence"),
    (dict(trim_silence="yes"), TypeError, "trim_silence", 'trim_silence must be True or False, got "yes"'),
    (dict(retries=-1), ValueError, "retries", "retries must be an integer from 0 to 100, got -1"),
]


@pytest.mark.parametrize("kw, kind, option, words", LIBRARY, ids=[next(iter(row[0])) + "=" + repr(next(iter(
    row[0].values()))) for row in LIBRARY])
def test_the_library_refuses_a_bad_value(tts, kw, kind, option, words):
    for call in (lambda: tts.options(**{"speaker": "vivian", **kw}),
                 lambda: tts.generate_codes("Hello.", **{"speaker": "vivian", **kw})):
        with pytest.raises(kind) as e:
            call()
        assert isinstance(e.value, OptionError) and e.value.option == option
        assert words in str(e.value), str(e.value)


def test_sampling_resolve_checks_too(tts):
    with pytest.raises(ValueError, match="top_p must be a number above 0 and at most 1, got 0"):
        tts.sampling.resolve(top_p=0)
    assert tts.sampling.resolve(temperature=0).do_sample is False


def test_an_unknown_option_is_named_with_a_suggestion(tts):
    with pytest.raises(TypeError, match="unknown option 'tempreature'; did you mean 'temperature'"):
        tts.options(speaker="vivian", tempreature=0.5)
    with pytest.raises(TypeError, match="SpeechOptions"):
        tts.generate_codes("Hello.", {"speaker": "vivian"})


def test_a_speed_is_checked_and_the_reference_decode_refuses_it(tts):
    assert tts.options(speaker="vivian", speed=2).speed == 2.0
    with pytest.raises(ValueError, match="speed needs decode='stream'"):
        tts.generate("Hello.", speaker="vivian", speed=2, decode="reference")


def test_instruct_on_a_model_without_instructions_is_ignored_with_a_warning(tmp_path, caplog):
    small = mlx_qwen3tts.load(speaking_checkpoint(tmp_path / "cv06", size="0b6"))
    with caplog.at_level(logging.WARNING):
        options = small.options(speaker="vivian", instruct="Whisper.")
    assert options.instruct is None and "no instruction control" in caplog.text


def test_options_are_frozen_and_normalised(tts):
    options = tts.options(speaker="Vivian", language="English", guards=False, chunk_frames=4, temperature=1)
    assert (options.speaker, options.language, options.chunk_frames) == ("vivian", "english", (4,))
    assert options.guards.enabled is False and options.temperature == 1.0
    with pytest.raises(FrozenInstanceError):
        options.seed = 3
    assert options.with_values(seed=3).seed == 3 and options.seed is None
    with pytest.raises(ValueError, match="seed must be"):
        options.with_values(seed=-2)


def test_one_object_or_keywords_make_the_same_request(tts):
    kw = dict(speaker="vivian", seed=4, max_new_tokens=8)
    options = tts.options(**kw)
    a = tts.generate_codes("Hello there.", options)
    np.testing.assert_array_equal(a, tts.generate_codes("Hello there.", **kw))
    np.testing.assert_array_equal(a, tts.generate_codes("Hello there.", SpeechOptions(**kw)))
    # Keywords beside an object change it, checked again.
    np.testing.assert_array_equal(tts.generate_codes("Hello there.", options, seed=5),
                                  tts.generate_codes("Hello there.", **{**kw, "seed": 5}))


@pytest.mark.parametrize("layout, kind, live, whole", [
    ("auto", "custom_voice", False, True), ("auto", "voice_design", False, True), ("auto", "base", False, False),
    ("auto", "custom_voice", True, False), ("streaming", "custom_voice", False, False),
    ("whole", "custom_voice", True, True), ("whole", "base", False, True),
])
def test_the_text_layout_is_decided_in_one_place(layout, kind, live, whole):
    assert SpeechOptions(text_layout=layout).whole_text(kind, live) is whole


def test_non_streaming_mode_is_the_layout_by_another_name(tts):
    assert tts.options(speaker="vivian", non_streaming_mode=True).text_layout == "whole"
    assert tts.options(speaker="vivian", non_streaming_mode=False).text_layout == "streaming"
    with pytest.raises(TypeError, match="not both"):
        tts.options(speaker="vivian", non_streaming_mode=True, text_layout="whole")


# (field, value, words in the message): each a 400 "invalid_value" whose param is the field.
SERVER = [
    ("temperature", -1, "temperature must be a number from 0 up (0 is greedy), got -1"),
    ("top_p", 0, "top_p must be a number above 0 and at most 1, got 0"),
    ("top_p", 1.5, "top_p must be a number above 0 and at most 1, got 1.5"),
    ("top_k", -3, "top_k must be an integer of 0 (off) or more, got -3"),
    ("top_k", 2.5, "top_k must be an integer of 0 (off) or more, got 2.5"),
    ("repetition_penalty", 0, "repetition_penalty must be a number above 0 (1 is off), got 0"),
    ("max_new_tokens", -5, "max_new_tokens must be an integer from 1 to 8192 (codec frames), got -5"),
    ("max_new_tokens", 0, "max_new_tokens must be an integer from 1 to 8192 (codec frames), got 0"),
    ("max_new_tokens", "5", 'max_new_tokens must be an integer of 1 or more (codec frames, 12.5 per second), got "5"'),
    ("speed", 0.1, "speed must be a number from 0.25 to 4.0, got 0.1"),
    ("speed", "fast", 'speed must be a number from 0.25 to 4.0, got "fast"'),
    ("seed", "7", 'seed must be an integer from 0 to 2147483647, got "7"'),
    ("language", "klingon", "unknown language 'klingon'; choose one of: auto, chinese, english"),
    ("language", 5, "language must be a string (or None), got 5"),
    ("text_layout", "poem", 'unsupported text_layout "poem"; choose streaming'),
]


@pytest.mark.parametrize("field, value, words", SERVER, ids=[f"{f}={v!r}" for f, v, _ in SERVER])
def test_the_server_answers_a_bad_value_with_a_400_naming_the_field(server, field, value, words):
    body = {"input": TEXT, "voice": "vivian", "response_format": "pcm", field: value}
    r = httpx.post(f"{server.url}/v1/audio/speech", json=body, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", field) and words in error["message"], error
