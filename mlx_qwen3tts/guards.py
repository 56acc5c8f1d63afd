"""Runaway guards: stop generation that will not end by itself, and say why.

A random fraction of long runs never draw EOS, or get stuck on one sound. Three checks
catch it: a frame budget from the text length, a codebook-0 code (or a short cycle of codes)
repeating for too long, and a long stretch of near-silence after speech has started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

FRAMES_PER_SECOND = 12.5


@dataclass(frozen=True)
class Guards:
    """Thresholds of the runaway checks; `Guards(enabled=False)` is the reference behaviour."""

    enabled: bool = True
    frames_per_token: float = 8.0  # speech runs at about 3-4 frames per text token
    slack_frames: int = 75  # plus 6 s, so short texts keep room for pauses
    repeat_frames: int = 60  # one codebook-0 code for 4.8 s
    cycle_frames: int = 100  # a cycle of 2..max_period codes for 8 s
    max_period: int = 4
    silence_seconds: float = 6.0  # near-silence after speech
    silence_rms: float = 1e-3  # -60 dBFS

    def budget(self, text_tokens: int) -> int:
        return int(self.frames_per_token * text_tokens) + self.slack_frames


class GuardState:
    """Watches one generation frame by frame (and chunk by chunk for silence)."""

    def __init__(self, guards: Guards, budget: int):
        self.guards = guards
        self.budget = budget
        self.frames = 0
        self._recent: deque[int] = deque(maxlen=guards.max_period + 1)
        self._runs = [0] * (guards.max_period + 1)  # frames the cycle of each period has held
        self._heard_speech = False
        self._silent_samples = 0
        self.reason: str | None = None
        self.bad_frames = 0  # trailing frames that belong to the fault

    def frame(self, c0: int) -> str | None:
        """Records a frame's codebook-0 code; returns the reason to stop, if any."""
        g = self.guards
        self.frames += 1
        recent = self._recent
        for period in range(1, g.max_period + 1):
            held = len(recent) >= period and recent[-period] == c0
            self._runs[period] = self._runs[period] + 1 if held else 0
        recent.append(c0)
        # A stretch repeating with period p spans its matching frames plus the first p.
        if self._runs[1] and self._runs[1] + 1 >= g.repeat_frames:
            return self._stop("repetition", self._runs[1] + 1)
        longest = max((run + p for p, run in enumerate(self._runs) if p >= 2 and run), default=0)
        if longest >= g.cycle_frames:
            return self._stop("repetition", longest)
        if self.frames >= self.budget:
            return self._stop("budget", 0)
        return None

    def audio(self, samples: np.ndarray, sample_rate: int) -> str | None:
        """Records decoded audio; returns "silence" after too long a quiet stretch."""
        if not len(samples):
            return None
        if float(np.sqrt(np.mean(np.square(samples)))) >= self.guards.silence_rms:
            self._heard_speech, self._silent_samples = True, 0
            return None
        if self._heard_speech:
            self._silent_samples += len(samples)
            if self._silent_samples >= self.guards.silence_seconds * sample_rate:
                return self._stop("silence", int(self._silent_samples / sample_rate * FRAMES_PER_SECOND))
        return None

    def _stop(self, reason: str, bad_frames: int) -> str:
        self.reason, self.bad_frames = reason, bad_frames
        return reason


def guarded(frames: Iterator[tuple[mx.array, bool]], state: GuardState | None, outcome: dict,
            record: list[np.ndarray]) -> Iterator[tuple[mx.array, bool]]:
    """Passes `(frame, is_last)` through until the source ends or a guard fires; appends each
    frame's codes to `record` and puts the `finish_reason` ("eos", "max_new_tokens" or the
    guard's) in `outcome`. Each frame is read back once, here."""
    count = 0
    try:
        for frame, is_last in frames:
            count += 1
            row = np.asarray(frame)
            record.append(row)
            if state is not None and state.frame(int(row[0])):
                outcome["finish_reason"] = state.reason
                yield frame, True
                return
            if is_last:
                outcome["finish_reason"] = "max_new_tokens" if count >= outcome.get("frame_limit", 0) else "eos"
            yield frame, is_last
        outcome.setdefault("finish_reason", "eos")
    finally:
        if hasattr(frames, "close"):
            frames.close()
