"""The voices a request may name: the model's preset speakers and the voice files registered in
the voices folder (Base models).

A registered voice is `<folder>/<name>.safetensors`, written by `Voice.save`. Names are
checked against one strict pattern before any path is built from them, so no name can reach
outside the folder; a name that fails it is simply not a voice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from mlx_qwen3tts import Voice

from .errors import APIError

logger = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '-' or '_', starting with a letter or digit"
SUFFIX = ".safetensors"
# OpenAI's built-in voices: named on a model without them, the error lists this model's own.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
                 "verse", "marin", "cedar")


def check_name(name) -> str:
    """`name` if it is a valid voice name; else a 400 that gives the rule."""
    if name is None or name == "":
        raise APIError(400, f"a voice name is required (the form field name): use {NAME_RULE}",
                       "invalid_voice_name", "name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise APIError(400, f"invalid voice name {shown!r}: use {NAME_RULE}", "invalid_voice_name", "name")
    return name


class VoiceRegistry:
    """Preset speakers (CustomVoice) and registered voice files (Base) for one model."""

    def __init__(self, kind: str, speakers: list[str], folder: Path | None):
        self.kind = kind
        self.presets = list(speakers) if kind == "custom_voice" else []
        self.folder = None if folder is None else Path(folder).expanduser().resolve()
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, tuple[int, Voice]] = {}  # name -> (file mtime, voice)
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path:
        path = self.folder / f"{check_name(name)}{SUFFIX}"
        if path.parent != self.folder:  # cannot happen with the pattern; kept as the last line of defence
            raise APIError(400, f"invalid voice name {name!r}", "invalid_voice_name", "name")
        return path

    def registered(self) -> list[str]:
        if self.folder is None or self.kind != "base":  # only a Base model speaks in a registered voice
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.folder.glob(f"*{SUFFIX}")
                      if NAME.fullmatch(p.name[: -len(SUFFIX)]))

    def listing(self) -> list[dict]:
        out = [{"id": name, "name": name, "object": "audio.voice", "type": "preset"} for name in self.presets]
        for name in self.registered():
            stat = self._path(name).stat()
            out.append({"id": name, "name": name, "object": "audio.voice", "type": "audio_sample",
                        "created_at": int(stat.st_mtime)})
        return out

    def preset(self, name: str) -> str | None:
        """The preset speaker `name` names (case-insensitive), if any."""
        lowered = name.lower()
        return next((p for p in self.presets if p.lower() == lowered), None)

    def load(self, name: str) -> Voice | None:
        """The registered voice `name`, or None when there is none by that name."""
        if self.folder is None or self.kind != "base" or not NAME.fullmatch(name):
            return None
        path = self._path(name)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        try:
            voice = Voice.load(path)
        except (OSError, ValueError) as e:
            raise APIError(400, f"voice {name!r} cannot be used: {e}; delete it and register it again",
                           "invalid_voice", "voice") from None
        with self._lock:
            self._cache[name] = (mtime, voice)
        return voice

    def require_folder(self) -> Path:
        if self.folder is None:
            raise APIError(400, "this server has no voices folder: start it with --voices DIR to register voices",
                           "voices_disabled")
        return self.folder

    def exists(self, name: str) -> bool:
        return self.folder is not None and self._path(name).is_file()

    def add(self, name: str, voice: Voice) -> dict:
        """Stores `voice` as `name` (atomically: a failed write leaves nothing behind)."""
        self.require_folder()
        path = self._path(name)
        voice.save(path)
        with self._lock:
            self._cache.pop(name, None)
        logger.info("registered voice %r (%s)", name, "in context" if voice.in_context else "x-vector only")
        return {"id": name, "name": name, "object": "audio.voice", "type": "audio_sample",
                "created_at": int(time.time()), "in_context": voice.in_context}

    def delete(self, name: str) -> dict:
        self.require_folder()
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise APIError(404, f"no registered voice named {name!r}", "voice_not_found", "voice_id") from None
        with self._lock:
            self._cache.pop(name, None)
        logger.info("deleted voice %r", name)
        return {"id": name, "deleted": True, "object": "audio.voice.deleted"}

    def unknown(self, name: str) -> APIError:
        """The error for a voice this model does not have, listing the ones it has."""
        shown = f"{name!r} is one of OpenAI's voices, not this model's" if name.lower() in OPENAI_VOICES \
            else f"unknown voice {name!r}"
        if self.kind == "custom_voice":
            return APIError(400, f"{shown}; this model's voices are: {', '.join(self.presets)}",
                            "voice_not_found", "voice")
        names = self.registered()
        have = f"registered voices: {', '.join(names)}" if names else "no voices are registered yet"
        return APIError(400, f"{shown}; {have} (register one with POST /v1/audio/voices; a voice registered "
                             "under an OpenAI name makes apps written for OpenAI use it)", "voice_not_found", "voice")
