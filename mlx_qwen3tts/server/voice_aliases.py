"""A request's `voice` -> the model's voice: presets, registered voices, and OpenAI's names.

Apps written for OpenAI send one of OpenAI's 13 voice names (most send `alloy` or `ash` and
some allow nothing else), so every OpenAI name answers to one of the model's own voices:
- on a CustomVoice model, a preset from `DEFAULT_ALIASES` (changed with `--voice-alias`);
- on a Base model, `--default-voice` (a registered voice), if the server was given one.
A voice registered under an OpenAI name is that voice itself, ahead of any alias. The
model's own names match case-insensitively.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .errors import APIError
from .voices import NAME, NAME_RULE, OPENAI_VOICES, VoiceRegistry

logger = logging.getLogger(__name__)

# The nine CustomVoice presets by the voices their model card describes.
FEMALE_PRESETS = ("vivian", "serena", "ono_anna", "sohee")
MALE_PRESETS = ("ryan", "aiden", "uncle_fu", "dylan", "eric")
# OpenAI's voice -> the preset nearest to it in gender and character, spread over all nine.
DEFAULT_ALIASES = {
    "alloy": "serena",  # neutral and even -> warm, gentle
    "ash": "aiden",  # clear male -> sunny, clear midrange
    "ballad": "eric",  # soft, expressive male -> lively, slightly husky
    "coral": "sohee",  # warm female -> warm, emotional
    "echo": "ryan",  # resonant male -> dynamic, rhythmic
    "fable": "dylan",  # youthful narrator -> youthful, clear
    "nova": "vivian",  # bright female -> bright, a little edgy
    "onyx": "uncle_fu",  # deep male -> low, mellow
    "sage": "serena",  # calm female -> warm, gentle
    "shimmer": "ono_anna",  # light female -> light, nimble
    "verse": "ryan",  # expressive male -> dynamic
    "marin": "vivian",  # natural female -> bright
    "cedar": "aiden",  # natural male -> clear
}


def parse_alias(text: str) -> tuple[str, str]:
    """`NAME=VOICE` (from `--voice-alias`) -> (name, voice), both lower-case; ValueError says why not."""
    name, sep, voice = text.partition("=")
    name, voice = name.strip().lower(), voice.strip()
    if not sep or not name or not voice:
        raise ValueError(f"--voice-alias takes NAME=VOICE (e.g. alloy=ryan), got {text!r}")
    if not NAME.fullmatch(name):
        raise ValueError(f"--voice-alias {text!r}: the name must be {NAME_RULE}")
    return name, voice


def _stand_in(target: str, presets: list[str]) -> str:
    """`target` if the model has it, else a preset of the same voice kind (or the first)."""
    lowered = {p.lower(): p for p in presets}
    if target in lowered:
        return lowered[target]
    group = FEMALE_PRESETS if target in FEMALE_PRESETS else MALE_PRESETS
    return next((lowered[p] for p in group if p in lowered), presets[0])


@dataclass(frozen=True)
class Resolved:
    """What a request's voice names: `tts.stream()` keywords, and the name of the voice used."""

    options: dict
    name: str | None


class Voices:
    """The voice names one server answers to, over the model's `VoiceRegistry`."""

    def __init__(self, registry: VoiceRegistry, overrides: tuple[tuple[str, str], ...] = (),
                 default_voice: str | None = None):
        self.registry = registry
        self.default_voice = default_voice
        presets = registry.presets
        if registry.kind == "custom_voice":
            aliases = {name: _stand_in(target, presets) for name, target in DEFAULT_ALIASES.items()}
        elif registry.kind == "base" and default_voice:
            aliases = dict.fromkeys(OPENAI_VOICES, default_voice)
        else:
            aliases = {}
        for name, target in overrides:
            if registry.kind == "custom_voice":
                if (preset := registry.preset(target)) is None:
                    raise ValueError(f"--voice-alias {name}={target}: this model has no preset {target!r}; "
                                     f"its presets are: {', '.join(presets)}")
                target = preset
            aliases[name] = target
        if registry.kind == "custom_voice" and default_voice and registry.preset(default_voice) is None:
            raise ValueError(f"--default-voice {default_voice}: this model has no preset by that name; "
                             f"its presets are: {', '.join(presets)}")
        self.aliases = aliases
        if aliases:
            logger.info("voice aliases: %s", ", ".join(f"{k}->{v}" for k, v in aliases.items()))

    def listing(self) -> list[dict]:
        """The registry's voices, then the aliases (`type` "alias", `voice` what it speaks with)."""
        out = self.registry.listing()
        own = {v["id"].lower() for v in out}
        out += [{"id": name, "name": f"{name} ({target})", "object": "audio.voice", "type": "alias", "voice": target}
                for name, target in self.aliases.items() if name not in own]
        return out

    def resolve(self, voice: str | None, required: bool) -> Resolved:
        """`voice` as `tts.stream()` keywords; a 400 that says what to send when it names nothing here."""
        registry, kind = self.registry, self.registry.kind
        if kind not in ("custom_voice", "base"):
            return Resolved({}, voice)  # a VoiceDesign model's voice is its instructions
        if not voice:
            if required or not (self.default_voice or kind == "custom_voice"):
                raise self._missing()
            voice = self.default_voice or registry.presets[0]
        if kind == "custom_voice":
            speaker = registry.preset(voice) or registry.preset(self.aliases.get(voice.lower(), ""))
            if speaker is None:
                error = registry.unknown(voice)
                error.message += f"; OpenAI's voice names ({', '.join(list(self.aliases)[:3])}, ...) work too"
                raise error
            self._note(voice, speaker)
            return Resolved({"speaker": speaker}, speaker)
        for name in (voice, self.aliases.get(voice.lower())):
            if name and (registered := registry.load(name)) is not None:
                self._note(voice, name)
                return Resolved({"voice": registered}, name)
        raise self._unknown_on_base(voice)

    def _note(self, asked: str, used: str) -> None:
        if asked.lower() != used.lower():
            logger.info("voice %r answered by %r", asked, used)

    def _missing(self) -> APIError:
        if self.registry.kind == "custom_voice":
            return APIError(400, f"voice is required: one of {', '.join(self.registry.presets)}", "missing_voice",
                            "voice")
        return APIError(400, "voice is required: the name of a registered voice (GET /v1/audio/voices lists them; "
                             "POST /v1/audio/voices registers one)", "missing_voice", "voice")

    def _unknown_on_base(self, voice: str) -> APIError:
        if voice.lower() in OPENAI_VOICES and not self.default_voice:
            names = self.registry.registered()
            have = f"registered voices: {', '.join(names)}" if names else "no voices are registered yet"
            return APIError(400, f"{voice!r} is one of OpenAI's voices; a Base model speaks only registered voices "
                                 f"({have}): register one under that name (POST /v1/audio/voices with name="
                                 f"{voice.lower()}), or start the server with --default-voice NAME to answer every "
                                 "OpenAI voice name with a registered voice", "voice_not_found", "voice")
        if self.default_voice and self.aliases.get(voice.lower()) == self.default_voice:
            return APIError(400, f"{voice!r} stands for --default-voice {self.default_voice!r}, which is not "
                                 "registered: register it with POST /v1/audio/voices", "voice_not_found", "voice")
        return self.registry.unknown(voice)
