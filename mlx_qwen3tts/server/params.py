"""Request fields -> the library's `SpeechOptions`, for HTTP and the WebSocket alike.

The library judges every value (`tts.options`); this module maps JSON to its options and its
errors to 400s that name the request's field. What only the server decides stays here: voices
by name, the input and instruction limits, the frame cap. It all runs before the request waits
for the model, so bad input is answered at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlx_qwen3tts import OptionError, SpeechOptions, clean_text
from mlx_qwen3tts.timescale import speed_stage

from .encoders import HTTP_FORMATS, unavailable
from .errors import APIError

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
STREAM_FORMATS = ("audio", "sse")
# Request fields that are library options of the same name.
SAME_NAMES = ("language", "seed", "temperature", "top_k", "top_p", "repetition_penalty", "text_layout",
              "max_new_tokens", "speed")
# A library option's request field, where the names differ.
FIELDS = {"speaker": "voice", "instruct": "instructions"}


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


def _string(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(name, "a string", value)
    return value


def stream_options(data: dict, state, *, voice_required: bool) -> SpeechOptions:
    """`voice`, `instructions`, `language`, `seed`, `text_layout`, `speed` and the sampling fields ->
    the request's options (without `text_layout`, the library's default layout)."""
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
    for name in SAME_NAMES:
        if data.get(name) is not None:
            options[name] = data[name]
    cap = tts.sampling.max_new_tokens  # a server's limit: the library takes any count
    tokens = options.get("max_new_tokens")
    if isinstance(tokens, int) and not isinstance(tokens, bool) and not 1 <= tokens <= cap:
        raise _bad("max_new_tokens", f"an integer from 1 to {cap} (codec frames)", tokens)
    options = speech_options(tts, options)
    try:
        speed_stage(options.speed)  # off 1, the time-scale library must be installed
    except ImportError as e:
        raise APIError(400, f"this server cannot change the speed: {e}", "unsupported_speed", "speed") from None
    return options


def speech_options(tts, fields: dict) -> SpeechOptions:
    """`tts.options(**fields)`, its refusal a 400 naming the request's field."""
    try:
        return tts.options(**fields)
    except OptionError as e:
        raise APIError(400, str(e), "invalid_value", FIELDS.get(e.option, e.option)) from None
    except ValueError as e:  # whatever else the library refuses (a voice file it cannot read, ...)
        raise APIError(400, str(e), "invalid_request") from None


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
    options: SpeechOptions


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
