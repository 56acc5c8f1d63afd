"""The shapes of OpenAI Realtime API events this server reads and sends (speech out only).

Reading: a session's settings (voice, output format, speed, instructions) and the text of
conversation items. Sending: the session and response objects, as the openai SDK's
`client.realtime` types describe them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from mlx_qwen3tts import SAMPLE_RATE

from .errors import APIError

PCM_FORMAT = {"type": "audio/pcm", "rate": SAMPLE_RATE}
TEXT_PARTS = ("input_text", "text", "output_text")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# Fields of our speech API a session may carry beside OpenAI's (for a fixed seed, say).
EXTRA_FIELDS = ("language", "seed", "temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens")


@dataclass
class SessionSettings:
    """What a session (or one response) speaks with."""

    voice: str | None = None
    instructions: str | None = None
    speed: float | None = None
    extra: dict = field(default_factory=dict)

    def merged(self, config: dict) -> SessionSettings:
        """These settings with a `session.update`'s or `response.create`'s fields over them."""
        if not isinstance(config, dict):
            raise APIError(400, "session must be a JSON object", "invalid_value", "session")
        output = ((config.get("audio") or {}).get("output") or {}) if isinstance(config.get("audio"), dict) else {}
        voice = output.get("voice", config.get("voice", self.voice))
        if isinstance(voice, dict):  # {"id": "..."}
            voice = voice.get("id")
        if voice is not None and not isinstance(voice, str):
            raise APIError(400, "audio.output.voice must be a voice name", "invalid_value", "audio.output.voice")
        check_format(output.get("format"))
        if config.get("output_modalities") not in (None, ["audio"], ["audio", "text"], ["text", "audio"]):
            raise APIError(400, "this server only speaks: output_modalities must be [\"audio\"]", "invalid_value",
                           "output_modalities")
        instructions = config.get("instructions", self.instructions)
        if instructions is not None and not isinstance(instructions, str):
            raise APIError(400, "instructions must be a string", "invalid_value", "instructions")
        extra = {**self.extra, **{name: config[name] for name in EXTRA_FIELDS if name in config}}
        return SessionSettings(voice, instructions, output.get("speed", self.speed), extra)

    def described(self, model: str) -> dict:
        """The session object of `session.created` / `session.updated`."""
        return {"type": "realtime", "object": "realtime.session", "id": None, "model": model,
                "output_modalities": ["audio"], "instructions": self.instructions or "",
                "audio": {"output": {"format": PCM_FORMAT, "voice": self.voice, "speed": self.speed or 1.0}}}


def check_format(fmt) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    rate = fmt.get("rate", SAMPLE_RATE) if isinstance(fmt, dict) else SAMPLE_RATE
    if kind not in ("audio/pcm", "pcm16") or rate != SAMPLE_RATE:
        raise APIError(400, f"unsupported output format {fmt!r}: this server sends audio/pcm (16-bit) at {SAMPLE_RATE} Hz",
                       "invalid_value", "audio.output.format")


def item_text(item) -> str:
    """The text of a conversation item (a message's text parts, joined)."""
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        raise APIError(400, "an item must be a message with text content ({\"type\": \"message\", \"role\": "
                            "\"user\", \"content\": [{\"type\": \"input_text\", \"text\": ...}]})", "invalid_value",
                       "item")
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise APIError(400, "a message's content must be a list of text parts", "invalid_value", "item.content")
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            raise APIError(400, "this server speaks text: content parts must be input_text (or text) with a string "
                                "\"text\"; audio input is not taken", "invalid_value", "item.content")
        texts.append(part["text"])
    return " ".join(texts)


def response_object(response_id: str, status: str, voice: str | None, item_id: str | None = None,
                    reason: str | None = None, error: APIError | None = None, frames: int = 0) -> dict:
    """The response object of `response.created` / `response.done`."""
    details = None
    if status == "cancelled":
        details = {"type": "cancelled", "reason": reason or "client_cancelled"}
    elif status == "failed" and error is not None:
        details = {"type": "failed", "error": {"type": error.type, "code": error.code, "message": error.message}}
    output = [] if item_id is None else [{"id": item_id, "object": "realtime.item", "type": "message",
                                          "role": "assistant", "status": "completed" if status != "in_progress"
                                          else "in_progress", "content": [{"type": "output_audio"}]}]
    return {"id": response_id, "object": "realtime.response", "status": status, "status_details": details,
            "output": output, "conversation_id": None, "output_modalities": ["audio"],
            "audio": {"output": {"format": PCM_FORMAT, "voice": voice}},
            "usage": {"total_tokens": frames, "input_tokens": 0, "output_tokens": frames}}


def error_event(error: APIError, event_id: str | None = None) -> dict:
    return {"type": "error", "event_id": new_id("event"),
            "error": {"type": error.type, "code": error.code, "message": error.message, "param": error.param,
                      "event_id": event_id}}
