"""What a Wyoming client sees of the model: the `info` answer to `describe` (one TTS program,
its voices and their languages) and the mapping from a requested voice to `tts.stream()` options.

Home Assistant lists a voice under each of its languages and names it by `name` alone, so every
voice carries all the model's languages (each preset speaks all of them) as ISO 639-1 codes.
"""

from __future__ import annotations

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

import mlx_qwen3tts
from mlx_qwen3tts import SpeechOptions

from .errors import APIError
from .params import stream_options

PROGRAM = "mlx-qwen3tts"
ATTRIBUTION = Attribution(name="Qwen3-TTS (Alibaba Qwen team), run by mlx-qwen3tts on MLX",
                          url="https://github.com/QwenLM/Qwen3-TTS")
# The model's language names -> the codes Wyoming and Home Assistant use.
LANGUAGE_CODES = {"chinese": "zh", "english": "en", "german": "de", "italian": "it", "portuguese": "pt",
                  "spanish": "es", "japanese": "ja", "korean": "ko", "french": "fr", "russian": "ru"}
DESIGN_VOICE = "default"  # a VoiceDesign model's one voice: Wyoming has no field for its instructions


def language_codes(tts) -> list[str]:
    """The model's languages as codes (a name without a known code is listed as it is)."""
    return [LANGUAGE_CODES.get(name, name) for name in tts.languages if name != "auto"]


def voice_names(state) -> list[str]:
    """The names a `voice.name` may take: presets (CustomVoice), registered voices (Base)."""
    tts = state.require_tts()
    if tts.kind == "custom_voice":
        return list(state.registry.presets)
    if tts.kind == "base":
        return state.registry.registered()
    return [DESIGN_VOICE]


def _description(tts, name: str) -> str:
    if tts.kind == "base":
        return f"{name} (registered voice)"
    if tts.kind != "custom_voice":
        return "the VoiceDesign model's voice, without instructions"
    dialect = tts.config.talker.spk_is_dialect.get(name.lower(), False)
    shown = name.replace("_", " ").title()
    return f"{shown} ({dialect.replace('_', ' ')})" if isinstance(dialect, str) else shown


def describe(state) -> Info:
    """The `info` event's content: one program that streams text, with this model's voices."""
    tts = state.require_tts()
    languages = language_codes(tts)
    voices = [TtsVoice(name=name, description=_description(tts, name), attribution=ATTRIBUTION, installed=True,
                       version=None, languages=languages) for name in voice_names(state)]
    program = TtsProgram(name=PROGRAM, description=f"Qwen3-TTS {state.settings.model_id}, streamed frame by frame",
                         attribution=ATTRIBUTION, installed=True, version=mlx_qwen3tts.__version__, voices=voices,
                         supports_synthesize_streaming=True)
    return Info(tts=[program])


def model_language(tts, requested: str) -> str:
    """A Wyoming language ("en", "en_US", "en-GB", "english") -> the model's language name."""
    wanted = requested.strip().lower().replace("-", "_")
    code = wanted.split("_")[0]
    for name in tts.languages:
        if wanted == name or (name != "auto" and LANGUAGE_CODES.get(name) == code):
            return name
    have = ", ".join(f"{LANGUAGE_CODES.get(n, n)} ({n})" for n in tts.languages if n != "auto")
    raise APIError(400, f"unknown language {requested!r}; this model speaks: {have}; or leave the language out",
                   "unknown_language")


def reply_options(state, voice: dict | None, *, live: bool, defaults: dict | None = None) -> SpeechOptions:
    """The options of a reply in `voice` (a Wyoming voice dict: name, language).

    `live` replies (text streamed in pieces) read the text as they speak; `defaults` (a
    server's fixed seed or frame budget) go under what the request sets. The one place where
    Wyoming requests become library options."""
    tts = state.require_tts()
    voice = voice if isinstance(voice, dict) else {}
    name, language = voice.get("name"), voice.get("language")
    if not isinstance(name, (str, type(None))) or not isinstance(language, (str, type(None))):
        raise APIError(400, "voice.name and voice.language must be strings", "invalid_voice")
    data: dict = {**(defaults or {})}
    if tts.kind == "base" and not name:
        names = voice_names(state)
        if not names:
            raise APIError(400, "this Base model has no registered voices yet: register one over HTTP "
                                "(POST /v1/audio/voices, server started with --voices DIR)", "no_voices")
        name = names[0]
    if tts.kind != "voice_design" and name:
        data["voice"] = name
    elif name and name != DESIGN_VOICE:
        raise APIError(400, f"unknown voice {name!r}; this VoiceDesign model has one voice: {DESIGN_VOICE}",
                       "voice_not_found")
    if language:
        data["language"] = model_language(tts, language)
    options = stream_options(data, state, voice_required=False)
    return options.with_values(text_layout="streaming") if live and options.text_layout == "auto" else options
