"""Runaway guards: stop generation that will not end by itself, and say why.

A random fraction of long runs never draw EOS, or get stuck on one sound. Three checks
catch it: a frame budget from the text length, a codebook-0 code (or a short cycle of codes)
repeating for too long, and a long stretch of near-silence after speech has started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

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


GUARD_REASONS = ("budget", "repetition", "silence")


class FrameGuard:
    """Watches one segment's frames: the budget, and a code (or short cycle) that repeats."""

    def __init__(self, guards: Guards, budget: int | Callable[[], int]):
        self.guards = guards
        self._budget = budget if callable(budget) else (lambda: budget)
        self.frames = 0
        self._recent: deque[int] = deque(maxlen=guards.max_period + 1)
        self._runs = [0] * (guards.max_period + 1)  # frames the cycle of each period has held

    def __call__(self, c0: int) -> tuple[str, int] | None:
        """Records a frame's codebook-0 code; returns (reason, trailing frames that belong to the
        fault) when the segment must stop."""
        g = self.guards
        self.frames += 1
        recent = self._recent
        for period in range(1, g.max_period + 1):
            held = len(recent) >= period and recent[-period] == c0
            self._runs[period] = self._runs[period] + 1 if held else 0
        recent.append(c0)
        # A stretch repeating with period p spans its matching frames plus the first p.
        if self._runs[1] and self._runs[1] + 1 >= g.repeat_frames:
            return "repetition", self._runs[1] + 1
        longest = max((run + p for p, run in enumerate(self._runs) if p >= 2 and run), default=0)
        if longest >= g.cycle_frames:
            return "repetition", longest
        # The budget grows with the text known so far; a live text is complete long before it binds.
        if self.frames >= self._budget():
            return "budget", 0
        return None


class SilenceGuard:
    """Watches decoded audio: a long near-silence after speech has started."""

    def __init__(self, guards: Guards):
        self.guards = guards
        self._heard_speech = False
        self._silent_samples = 0

    def __call__(self, samples: np.ndarray, sample_rate: int) -> tuple[str, int] | None:
        """Records a chunk; returns ("silence", frames of it) after too long a quiet stretch."""
        if not len(samples):
            return None
        if float(np.sqrt(np.mean(np.square(samples)))) >= self.guards.silence_rms:
            self._heard_speech, self._silent_samples = True, 0
            return None
        if self._heard_speech:
            self._silent_samples += len(samples)
            if self._silent_samples >= self.guards.silence_seconds * sample_rate:
                return "silence", int(self._silent_samples / sample_rate * FRAMES_PER_SECOND)
        return None
