"""Speaking from Python: text in, sound out through the live player, blocking or in the background."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .sinks import Progress, feed
from .player import Player
from mlx_qwen3tts.text import estimate_seconds


class Speech:
    """One utterance being spoken: `stop()` it, or `wait()` until it has been heard."""

    def __init__(self, player: Player):
        self.player = player
        self.progress: Progress | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def stop(self) -> None:
        """Stops generation after the current chunk and cuts the sound (short fade)."""
        self._stop.set()
        self.player.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the speech has played (or was stopped); re-raises a generation error.

        Returns:
            False if `timeout` passed first.
        """
        if not self._finished.wait(timeout):
            return False
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return True

    def _run(self, make_streams: Callable[[], object], expected: float | None) -> None:
        try:
            self.player.expect(expected)
            self.progress = feed(make_streams(), [self.player], stop=self._stop)
            if not self._stop.is_set():
                self.player.drain()
        except BaseException as e:
            self.player.stop()
            self._error = e
        finally:
            self.player.close()
            self._finished.set()


def speak(tts, text, *, block: bool = True, device: int | str | None = None, **kwargs) -> Speech:
    """Plays `text` as it is generated: one generation context, one stream, no gaps.

    Args:
        tts: a loaded `mlx_qwen3tts.TTS` (anything with `stream()` and `sample_rate`).
        text: what to say: a str, a `TextFeed` or an iterable of pieces still being written.
        block: wait until everything has played (Ctrl-C stops it); False returns at once and
            generates on a background thread.
        device: sounddevice output device; None for the default.
        **kwargs: passed to `tts.stream()` (speaker, language, voice, ...).

    Returns:
        The `Speech`, already finished when `block` is True.

    Raises:
        ValueError: for empty text; `NoOutputDevice` when nothing can play sound.
    """
    if isinstance(text, str) and not text.strip():
        raise ValueError("the text is empty")
    speech = Speech(Player(tts.sample_rate, device=device).open())
    args = (lambda: [tts.stream(text, **kwargs)], estimate_seconds(text) if isinstance(text, str) else None)
    if block:
        speech._run(*args)
        speech.wait()
    else:
        speech._thread = threading.Thread(target=speech._run, args=args, name="mlx-qwen3tts-speak", daemon=True)
        speech._thread.start()
    return speech
