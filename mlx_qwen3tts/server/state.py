"""What one server holds: its settings and limits, the model (once loaded), the voices, the
scheduler, and a record of each request for its log line."""

from __future__ import annotations

import logging
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import APIError
from .scheduler import Scheduler
from .voice_aliases import Voices
from .voices import VoiceRegistry

logger = logging.getLogger("mlx_qwen3tts.server")


@dataclass(frozen=True)
class Settings:
    """A server's configuration; the limits are what its error messages quote."""

    model_id: str = "qwen3-tts"
    api_key: str | None = None
    voices_dir: Path | None = None
    max_queue: int = 8  # jobs waiting behind the ones running; one more is a 503
    max_batch: int = 1  # jobs that run at once, as one batch (`serve` picks its own default)
    max_input_chars: int = 4096  # per HTTP request, and per utterance on the WebSocket
    max_body_bytes: int = 1 << 20  # JSON bodies
    max_upload_bytes: int = 20 << 20  # reference audio for a voice
    ws_idle_seconds: float = 2.0  # a session silent this long mid-utterance gives way to others
    ws_max_message_bytes: int = 1 << 20
    cors_origins: tuple[str, ...] = ()
    voice_aliases: tuple[tuple[str, str], ...] = ()  # (name, voice) from --voice-alias, over the defaults
    default_voice: str | None = None  # for OpenAI's voice names on a Base model, and requests naming none


@dataclass
class Record:
    """One request (or WebSocket utterance), for its log line."""

    kind: str  # "speech" or "ws"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    chars: int = 0
    format: str = ""
    audio_seconds: float = 0.0
    ttfb: float | None = None  # seconds from arrival to the first audio byte sent
    queued: float = 0.0  # seconds waiting for the model
    ahead: int = 0  # jobs it found holding or waiting for the model
    compute: float = 0.0  # seconds holding the model
    frames: int = 0
    frames_at_first_byte: int | None = None
    finish_reason: str = ""
    utterance: int | None = None

    @property
    def rtf(self) -> float | None:
        return self.compute / self.audio_seconds if self.audio_seconds else None

    def line(self) -> str:
        ttfb = "-" if self.ttfb is None else f"{self.ttfb:.3f}s"
        rtf = "-" if self.rtf is None else f"{self.rtf:.2f}"
        where = f" utterance={self.utterance}" if self.utterance is not None else ""
        return (f"{self.kind} id={self.id}{where} chars={self.chars} audio={self.audio_seconds:.2f}s ttfb={ttfb} "
                f"rtf={rtf} finish={self.finish_reason or '-'} format={self.format} queued={self.queued:.3f}s"
                f" ahead={self.ahead}")


class ServerState:
    """Shared by every route; the event loop's alone but for `tts`, which is set once by the loader."""

    def __init__(self, settings: Settings, tts=None):
        self.settings = settings
        self.scheduler = Scheduler(settings.max_queue, settings.max_batch)
        # Pumps for the streams (see pump.py): one per place in the batch, as many closing.
        self.executor = ThreadPoolExecutor(max_workers=2 * settings.max_batch + 2,
                                           thread_name_prefix="mlx-qwen3tts-server")
        self.records: deque[Record] = deque(maxlen=256)
        self.tts = None
        self.registry: VoiceRegistry | None = None
        self.voices: Voices | None = None
        self.load_error: str | None = None
        if tts is not None:
            self.set_model(tts)

    def set_model(self, tts) -> None:
        self.registry = VoiceRegistry(tts.kind, tts.speakers, self.settings.voices_dir)
        self.voices = Voices(self.registry, self.settings.voice_aliases, self.settings.default_voice)
        tts.batch.max_batch = self.settings.max_batch
        self.tts = tts

    def require_tts(self):
        if self.tts is None:
            if self.load_error:
                raise APIError(503, f"the model failed to load: {self.load_error}", "model_unavailable")
            raise APIError(503, "the model is still loading; try again in a few seconds", "model_loading",
                           headers={"Retry-After": "5"})
        return self.tts

    def log(self, record: Record) -> None:
        self.records.append(record)
        logger.info(record.line())

    def busy_error(self, error) -> APIError:
        """The 503 for a full queue (a `QueueFull`)."""
        return APIError(503, str(error), "server_busy", headers={"Retry-After": str(error.retry_after)})
