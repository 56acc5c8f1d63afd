"""`speak`'s status line on stderr: speech so far, first-audio latency, RTF and underruns."""

from __future__ import annotations

import sys
import time

from .sinks import Progress
from .player import Player


class Status:
    """One status line on stderr, redrawn in place on a terminal."""

    def __init__(self, quiet: bool, player: Player | None):
        self.quiet, self.player = quiet, player
        self.live = not quiet and sys.stderr.isatty()
        self._drawn = 0.0

    def line(self, p: Progress) -> str:
        first = p.first_chunk
        if self.player is not None and self.player.started_at is not None:
            first = self.player.started_at - p.started
        parts = [f"{p.audio_seconds:.1f} s of speech", f"RTF {p.rtf:.2f}" if p.samples else "RTF -"]
        parts.insert(1, f"first audio {first:.2f} s" if first is not None else "first audio -")
        if self.player is not None:
            parts.append(f"{self.player.underruns} underruns")
        return " · ".join(parts)

    def update(self, p: Progress) -> None:
        now = time.perf_counter()
        if self.live and now - self._drawn > 0.1:
            self._drawn = now
            sys.stderr.write("\r\033[K" + self.line(p))
            sys.stderr.flush()

    def note(self, text: str) -> None:
        """A line of its own; the status line is drawn again below it at the next update."""
        if not self.quiet:
            sys.stderr.write(("\r\033[K" if self.live else "") + text + "\n")
            sys.stderr.flush()
            self._drawn = 0.0

    def done(self, p: Progress | None, note: str = "") -> None:
        if self.quiet:
            return
        text = self.line(p) if p is not None else ""
        text = " · ".join(t for t in (text, note) if t)
        sys.stderr.write(("\r\033[K" if self.live else "") + text + "\n")
        sys.stderr.flush()
