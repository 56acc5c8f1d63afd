"""`SpeechOptions`: every knob of one request, checked when it is made, frozen after.

`tts.options(**kw)` builds one and also checks it against the model (its speakers, languages,
kind); `tts.generate(text, options)` and `tts.generate(text, **kw)` are the same request. The
HTTP server, the WebSocket and the `speak` command build theirs the same way, so every door
gets the same rules and the same messages.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields, replace
from typing import Any

from .checks import OptionError, OptionTypeError, check_bool, check_choice, check_int, check_text
from .guards import Guards
from .pipeline import DEFAULT_CHUNK_FRAMES
from .sampling import SAMPLING_OPTIONS, check_sampling
from .text import MAX_SEGMENT_TOKENS
from .timescale import check_speed
from .voice import Voice

TEXT_LAYOUTS = (
    ("streaming", "the model reads the text as it speaks"),
    ("whole", "the text sits in the prompt first"),
    ("auto", "streaming for live text and on Base models, whole for a str on the others"),
)
DECODES = (
    ("stream", "one causal decoder, the same audio `stream()` gives"),
    ("reference", "after generation, in the reference's 300-frame windows"),
)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class SpeechOptions:
    """The options of one request (everything but its text). Unset sampling values (None) take
    the checkpoint's generation_config.json.

    Voice: `speaker` (a CustomVoice preset), `language` ("auto" or one of `tts.languages`),
    `instruct` (a style instruction; a VoiceDesign model's voice description), `voice` (a cloned
    `Voice` or a saved voice file, Base models).
    Text: `text_layout` "streaming" (the model reads the text as it speaks), "whole" (each
    segment's text sits in the prompt first) or "auto" (`whole_text`); `max_segment_tokens`
    (longer texts are generated sentence group by sentence group).
    Sampling: `seed` (segment i of a request draws with seed + i), the talker's `temperature`
    (0 is greedy), `top_k` (0 off), `top_p` (1 off) and `repetition_penalty` (1 off), the code
    predictor's `subtalker_temperature`, `subtalker_top_k` and `subtalker_top_p`, and
    `max_new_tokens` (codec frames per segment, 12.5 a second).
    Output: `guards` (the runaway checks; False is the reference's behaviour), `chunk_frames`
    (a stream's chunk sizes: the ramp, then its last size), `trim_silence` (drop the quiet after
    each utterance), `retries` (`generate` runs a text stopped by a guard again, next seed),
    `speed` (0.25 to 4, 1 is as spoken) and `decode` ("stream", or "reference": `generate`
    decodes after generation in the reference's windows; different audio past 300 frames).
    """

    speaker: str | None = None
    language: str = "auto"
    instruct: str | None = None
    voice: Voice | str | os.PathLike | None = None
    text_layout: str = "auto"
    max_segment_tokens: int = MAX_SEGMENT_TOKENS
    seed: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    subtalker_temperature: float | None = None
    subtalker_top_k: int | None = None
    subtalker_top_p: float | None = None
    max_new_tokens: int | None = None
    guards: Guards = Guards()
    chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES
    trim_silence: bool = False
    retries: int = 0
    speed: float = 1.0
    decode: str = "stream"

    def __post_init__(self):
        put = object.__setattr__  # frozen: values are normalised once, here
        check_text("speaker", self.speaker)
        put(self, "language", "auto" if self.language is None else check_text("language", self.language))
        check_text("instruct", self.instruct)
        if self.voice is not None and not isinstance(self.voice, (Voice, str, os.PathLike)):
            raise OptionTypeError("voice", f"voice must be a Voice (tts.clone_voice(...)) or a voice file's "
                                           f"path, got {type(self.voice).__name__}")
        check_choice("text_layout", self.text_layout, TEXT_LAYOUTS)
        put(self, "max_segment_tokens", check_int("max_segment_tokens", self.max_segment_tokens, 2, None,
                                                  "an integer of 2 or more (text tokens per generation segment)"))
        if self.seed is not None:
            put(self, "seed", check_int("seed", self.seed, 0, MAX_SEED, f"an integer from 0 to {MAX_SEED}"))
        for name in SAMPLING_OPTIONS:
            if (value := getattr(self, name)) is not None:
                put(self, name, check_sampling(name, value))
        put(self, "guards", _guards(self.guards))
        put(self, "chunk_frames", _chunk_frames(self.chunk_frames))
        check_bool("trim_silence", self.trim_silence)
        check_int("retries", self.retries, 0, 100, "an integer from 0 to 100",
                  "each retry runs the text again with the next seed")
        put(self, "speed", check_speed(self.speed))
        check_choice("decode", self.decode, DECODES)

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling overrides set here, for `SamplingConfig.resolve`."""
        return {name: getattr(self, name) for name in SAMPLING_OPTIONS if getattr(self, name) is not None}

    def whole_text(self, kind: str, live: bool) -> bool:
        """Whether the text sits in the prompt (the "whole" layout). The one place "auto" is decided:
        live text (a feed or pieces still arriving) streams, or each segment would wait for its
        end; a str takes the reference's layout for the model's kind (Base models stream)."""
        if self.text_layout != "auto":
            return self.text_layout == "whole"
        return not live and kind != "base"

    def with_values(self, **changes) -> SpeechOptions:
        """A copy with `changes` (the keywords `speech_options` takes), checked again."""
        return replace(self, **_keywords(changes)) if changes else self


def speech_options(**kw) -> SpeechOptions:
    """`SpeechOptions(**kw)`, also taking the reference's `non_streaming_mode` (True is the whole
    layout), with a did-you-mean for a misspelt option."""
    return SpeechOptions(**_keywords(kw))


NAMES = tuple(f.name for f in fields(SpeechOptions))


def _keywords(kw: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kw)
    if "non_streaming_mode" in kw:
        mode = kw.pop("non_streaming_mode")
        if mode is not None:
            if "text_layout" in kw:
                raise TypeError("pass text_layout or non_streaming_mode, not both")
            kw["text_layout"] = "whole" if check_bool("non_streaming_mode", mode) else "streaming"
    for name in kw:
        if name not in NAMES:
            close = difflib.get_close_matches(name, NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(f"unknown option {name!r}; {hint}the options are: {', '.join(NAMES)}")
    return kw


def _guards(value) -> Guards:
    if isinstance(value, Guards):
        return value
    if value is None or isinstance(value, bool):
        return Guards(enabled=value is None or value)
    raise OptionTypeError("guards", f"guards must be True, False or a Guards(...), got {type(value).__name__}")


def _chunk_frames(value) -> tuple[int, ...]:
    sizes = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    takes = "a positive frame count or a sequence of them (the ramp, then its last size)"
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise OptionTypeError("chunk_frames", f"chunk_frames must be {takes}, got {type(value).__name__}")
    sizes = tuple(sizes)
    if not sizes:
        raise OptionError("chunk_frames", f"chunk_frames must be {takes}, got an empty sequence")
    return tuple(check_int("chunk_frames", s, 1, None, takes) for s in sizes)
