"""A WebSocket session's utterances: numbered across its streams, each with its log record.

An utterance is written (its first speakable text), then goes on air with the chunk that opens
its audio, and is finished by the chunk that ends it. Its record holds the wait for the model,
the time to its first byte from its first text, its audio and the compute it took.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from mlx_qwen3tts import SAMPLE_RATE

from .scheduler import Turn
from .state import Record, ServerState


@dataclass
class _Text:  # a speakable utterance's text, for its log line
    began: float
    chars: int


@dataclass
class _OnAir:  # the utterance being spoken, and when its own work began
    record: Record
    text: _Text
    started: float


class Utterances:
    """The session's utterances written but not yet heard, the one on air, and their numbers."""

    def __init__(self, state: ServerState):
        self.state = state
        self.number = 0  # the next utterance's number, across the session's streams
        self.waiting: deque[_Text] = deque()  # speakable utterances written, not yet on air
        self.on_air: _OnAir | None = None
        self.last_done = 0.0  # when the last utterance ended

    def written(self, began: float, chars: int) -> None:
        """A new utterance has its first speakable text."""
        self.waiting.append(_Text(began, chars))

    def grew(self, chars: int) -> None:
        """The latest utterance has `chars` more characters."""
        latest = self.waiting[-1] if self.waiting else None if self.on_air is None else self.on_air.text
        if latest is not None:
            latest.chars += chars

    def open(self, turn: Turn, fmt: str) -> int:
        """The next utterance goes on air; returns its number."""
        text = self.waiting.popleft() if self.waiting else _Text(time.perf_counter(), 0)
        record = Record("ws", format=fmt, utterance=self.number, queued=turn.waited, ahead=turn.ahead)
        self.on_air = _OnAir(record, text, max(self.last_done, text.began, turn.granted))
        return self.number

    def heard(self, samples: int, frames: int) -> None:
        """The utterance on air sent `samples` more samples, `frames` generated so far."""
        record = self.on_air.record
        if record.ttfb is None:
            record.ttfb = time.perf_counter() - self.on_air.text.began
        record.audio_seconds += samples / SAMPLE_RATE
        record.frames = frames

    def finish(self, reason: str) -> Record:
        """Ends the utterance on air: its log line, and the next utterance number."""
        on_air, self.on_air = self.on_air, None
        self.last_done = time.perf_counter()
        record = on_air.record
        record.finish_reason, record.chars, record.compute = reason, on_air.text.chars, self.last_done - on_air.started
        self.state.log(record)
        self.number += 1
        return record
