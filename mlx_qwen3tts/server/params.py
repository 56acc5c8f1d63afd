"""Request fields -> validated `tts.stream()` arguments, for HTTP and the WebSocket alike.

Every check here runs before the request waits for the model, so bad input is answered at
once with a 400 that names the field and says what it takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlx_qwen3tts.request import build_request
from mlx_qwen3tts.text import clean_text
from mlx_qwen3tts.timescale import MAX_SPEED, MIN_SPEED, speed_stage

from .encoders import HTTP_FORMATS, unavailable
from .errors import APIError

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
STREAM_FORMATS = ("audio", "sse")
TEXT_LAYOUTS = ("streaming", "whole")
# name -> (type, low, high, low inclusive, what it takes)
NUMBERS = {
    "seed": (int, 0, 2**31 - 1, True, "an integer from 0 to 2147483647"),
    "temperature": (float, 0.0, 2.0, True, "a number from 0 (greedy) to 2"),
    "top_k": (int, 0, 100_000, True, "an integer of 0 (off) or more"),
    "top_p": (float, 0.0, 1.0, False, "a number above 0 and at most 1"),
    "repetition_penalty": (float, 0.0, 2.0, False, "a number above 0 and at most 2"),
}


def parse_json(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise APIError(400, f"the body is not valid JSON ({e}); send a JSON object", "invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the body must be a JSON object, not {type(data).__name__}", "invalid_json")
    return data


def _bad(name: str, takes: str, value) -> APIError:
    return APIError(400, f"{name} must be {takes}, got {json.dumps(value)[:80]}", "invalid_value", name)


def _number(data: dict, name: str, kind: type, low, high, low_inclusive: bool, takes: str):
    value = data.get(name)
    if value is None:
        return None
    ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise _bad(name, takes, value)
    if not (low <= value <= high) or (not low_inclusive and value == low):
        raise _bad(name, takes, value)
    return kind(value)


def _string(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(name, "a string", value)
    return value


def stream_options(data: dict, state, *, voice_required: bool) -> dict:
    """`voice`, `instructions`, `language`, `seed`, `text_layout` and the sampling fields -> `tts.stream()`
    keywords (without `text_layout`, the library's default for the model's kind)."""
    tts, limit = state.require_tts(), state.settings.max_input_chars
    options: dict = {}
    voice = data.get("voice")
    if isinstance(voice, dict):  # OpenAI's custom-voice form, {"id": "..."}
        voice = voice.get("id")
    if voice is not None and not isinstance(voice, str):
        raise _bad("voice", "a voice name (a string) or {\"id\": name}", data.get("voice"))
    options.update(state.voices.resolve(voice, voice_required).options)
    # A VoiceDesign model's voice is its `instructions`; `voice` (which OpenAI clients always send) is unused.
    instructions = _string(data, "instructions")
    if instructions and instructions.strip():
        if not tts.config.supports_instruct:
            raise APIError(400, _no_instructions(tts.kind), "instructions_not_supported", "instructions")
        if len(instructions) > limit:
            raise APIError(400, f"instructions are {len(instructions)} characters; the limit is {limit}",
                           "instructions_too_long", "instructions")
        options["instruct"] = instructions
    language = _string(data, "language")
    if language is not None:
        if language.lower() not in tts.languages:
            raise APIError(400, f"unknown language {language!r}; choose one of: {', '.join(tts.languages)}",
                           "invalid_value", "language")
        options["language"] = language.lower()
    for name, spec in NUMBERS.items():
        if (value := _number(data, name, *spec)) is not None:
            options[name] = value
    if data.get("speed") is not None:
        options["speed"] = _speed(data["speed"])
    layout = _string(data, "text_layout")
    if layout is not None:
        if layout not in TEXT_LAYOUTS:
            raise APIError(400, f"unsupported text_layout {json.dumps(layout)}; choose streaming (the model reads "
                                "the text as it speaks) or whole (the text sits in the prompt first)",
                           "invalid_value", "text_layout")
        options["non_streaming_mode"] = layout == "whole"
    cap = tts.sampling.max_new_tokens
    tokens = _number(data, "max_new_tokens", int, 1, cap, True, f"an integer from 1 to {cap} (codec frames)")
    if tokens is not None:
        options["max_new_tokens"] = tokens
    try:  # whatever else the library refuses (a voice made for another model size, ...)
        build_request(tts.config, tts.tokenizer, tts.sampling, **{k: v for k, v in options.items() if k != "speed"})
    except ValueError as e:
        raise APIError(400, str(e), "invalid_request") from None
    return options


def _speed(value) -> float:
    try:
        return speed_stage(value)
    except ValueError:
        raise _bad("speed", f"a number from {MIN_SPEED} to {MAX_SPEED} (1 is the model's own pace)", value) from None
    except ImportError as e:
        raise APIError(400, f"this server cannot change the speed: {e}", "unsupported_speed", "speed") from None


def _no_instructions(kind: str) -> str:
    if kind == "base":
        return ("Base (voice clone) models take no instructions: leave `instructions` out (1.7B CustomVoice "
                "and VoiceDesign models take them)")
    return ("this 0.6B CustomVoice model takes no instructions (it was not trained with them): leave "
            "`instructions` out, or serve a 1.7B CustomVoice or VoiceDesign model")


def check_model(data: dict, model_id: str) -> None:
    model = data.get("model")
    if model is None or model == model_id:
        return
    if not isinstance(model, str):
        raise _bad("model", f"a model name ({model_id!r})", model)
    if model in OPENAI_MODELS or model.startswith("gpt-4o-mini-tts-"):
        return
    raise APIError(404, f"model {model!r} not found; this server serves {model_id!r} (OpenAI's "
                        f"{', '.join(OPENAI_MODELS)} are accepted as its aliases)", "model_not_found", "model")


@dataclass(frozen=True)
class SpeechRequest:
    """A validated `POST /v1/audio/speech` body."""

    text: str
    response_format: str
    stream_format: str
    options: dict  # tts.stream() keywords


def speech_request(data: dict, state) -> SpeechRequest:
    check_model(data, state.settings.model_id)
    text, limit = data.get("input"), state.settings.max_input_chars
    if text is None:
        raise APIError(400, "input is required: the text to speak", "missing_input", "input")
    if not isinstance(text, str):
        raise _bad("input", "a string (the text to speak)", text)
    if len(text) > limit:
        raise APIError(400, f"input is {len(text)} characters; the limit is {limit}: split the text into "
                            "several requests, or stream it over the WebSocket", "input_too_long", "input")
    try:
        clean_text(text)
    except ValueError as e:
        raise APIError(400, str(e).replace("text is empty", "input is empty", 1), "empty_input", "input") from None
    fmt = data.get("response_format") or "mp3"
    if fmt not in HTTP_FORMATS:
        raise APIError(400, f"unsupported response_format {json.dumps(fmt)}; choose one of: "
                            f"{', '.join(HTTP_FORMATS)}", "unsupported_format", "response_format")
    if (missing := unavailable(fmt)) is not None:
        raise APIError(400, missing, "unsupported_format", "response_format")
    stream_format = data.get("stream_format") or "audio"
    if stream_format not in STREAM_FORMATS:
        raise APIError(400, f"unsupported stream_format {json.dumps(stream_format)}; choose audio or sse",
                       "unsupported_stream_format", "stream_format")
    return SpeechRequest(text, fmt, stream_format, stream_options(data, state, voice_required=True))
