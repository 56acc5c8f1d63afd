"""Text as it arrives: `TextFeed`, written by a producer on any thread, read by the frame loop.

A stream's text is a sequence of utterances (ended by `flush()`), each cut into generation
segments. The feed turns what is written into the token ids of each segment as soon as they can
no longer change (`TextStream`), so the frame loop can feed each token when it
reaches it, and wait, never guess, when it has not arrived yet. A whole text goes through the
same feed, written once and closed, so both paths make the same segments and tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .stream import MAX_SEGMENT_TOKENS, Release, TextStream

if TYPE_CHECKING:
    from ..tokenizer import TextTokenizer


class Cancelled(Exception):
    """The feed was cancelled: generation stops."""


class SegmentText:
    """One segment's token ids, complete or still arriving; read from the generation thread."""

    def __init__(self, cond: threading.Condition, feed: TextFeed, index: int, utterance: int):
        self._cond, self._feed = cond, feed
        self.index = index  # segment number in the stream
        self.utterance = utterance  # utterance number in the stream
        self._ids: list[int] = []
        self.complete = False
        self.ends_utterance = False  # known once complete

    def _wait(self, done) -> None:
        while not done():
            self._feed._check()
            self._cond.wait()
        self._feed._check()

    @property
    def known(self) -> int:
        """How many of its tokens are known so far."""
        with self._cond:
            return len(self._ids)

    def ready(self, i: int) -> bool:
        """Whether `get(i)` would answer without waiting."""
        with self._cond:
            return i < len(self._ids) or self.complete or self._feed._stopped

    def get(self, i: int) -> int | None:
        """Token `i`, waiting for it; None when the segment is complete without it."""
        with self._cond:
            self._wait(lambda: i < len(self._ids) or self.complete)
            return self._ids[i] if i < len(self._ids) else None

    def tokens(self) -> tuple[int, ...]:
        """All the segment's tokens, waiting until it is complete."""
        with self._cond:
            self._wait(lambda: self.complete)
            return tuple(self._ids)

    # -- writer side (the feed) -------------------------------------------------------------

    def extend(self, tokens: tuple[int, ...]) -> None:
        """Appends tokens that can no longer change; the feed wakes the reader."""
        with self._cond:
            self._ids.extend(tokens)

    def finish(self, ends_utterance: bool) -> None:
        """Marks the segment complete; the feed wakes the reader."""
        with self._cond:
            self.complete = True
            self.ends_utterance = ends_utterance


class TextFeed:
    """The text of one stream, written as it is made: pass it to `tts.stream()` or `tts.generate()`.

    Thread-safe: write from any thread while the stream is read on another. `write(text)` adds
    text (any size, down to single characters); `flush()` ends the current utterance, so what
    was written is spoken to its end and later text starts the next utterance in the same
    stream (same voice, same continuous decoder); `close()` ends the input after the last
    utterance; `cancel()` stops generation within one frame and drops what is queued.
    """

    def __init__(self, text: str | None = None):
        self._cond = threading.Condition()
        self._pending: list[tuple[str, str]] = []  # writes and flushes before the stream binds
        self._tokenizer: TextTokenizer | None = None
        self._max_tokens = MAX_SEGMENT_TOKENS
        self._text: TextStream | None = None  # the current utterance's text
        self._held: list[Release] = []  # an utterance's first releases, until it has words to speak
        self._segments: list[SegmentText] = []
        self._open: SegmentText | None = None
        self._utterances = 0
        self.closed = self.cancelled = False
        self._error: BaseException | None = None
        self.whole = text is not None  # made from a whole text, not written as it comes
        if text is not None:
            self.write(text)
            self.close()

    # -- producer side --------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Adds `text` to the current utterance. Raises ValueError past the length limit."""
        if not isinstance(text, str):
            raise TypeError(f"text pieces must be str, not {type(text).__name__}")
        with self._cond:
            self._refuse_after_close()
            if self._tokenizer is None:
                self._pending.append(("write", text))
                return
            self._apply(self._utterance().push(text))

    def flush(self) -> None:
        """Ends the current utterance: what was written is spoken to its end."""
        with self._cond:
            self._refuse_after_close()
            if self._tokenizer is None:
                self._pending.append(("flush", ""))
                return
            self._end_utterance()

    def close(self) -> None:
        """Ends the input: the last utterance is spoken to its end, then the stream ends."""
        with self._cond:
            if self.closed or self.cancelled:
                return
            if self._tokenizer is not None:
                self._end_utterance()
            self.closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Stops generation within one frame and drops whatever text is still queued."""
        with self._cond:
            self.cancelled = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Ends the stream with `error`, which its reader raises (a producer that failed)."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def _refuse_after_close(self) -> None:
        if self.closed or self.cancelled:
            raise RuntimeError("this TextFeed is closed: write to a new one")

    def _utterance(self) -> TextStream:
        if self._text is None:
            self._text = TextStream(self._tokenizer, self._max_tokens)
        return self._text

    def _end_utterance(self) -> None:
        if self._text is None:
            return
        self._apply(self._text.end(), final=True)
        self._text, self._held = None, []
        if self._open is not None:  # text that never said a word leaves no segment behind
            self._open.finish(ends_utterance=True)
            self._open = None
        self._utterances += 1
        self._cond.notify_all()

    def _apply(self, releases: list[Release], final: bool = False) -> None:
        # Nothing is released before the utterance has a letter or digit: text that never does
        # (a stray "...") must not start a generation.
        self._held += releases
        if not self._text.speakable:
            return
        releases, self._held = self._held, []
        for release in releases:
            if release.tokens:
                if self._open is None:
                    self._open = SegmentText(self._cond, self, len(self._segments), self._utterances)
                    self._segments.append(self._open)
                self._open.extend(release.tokens)
            if release.segment_end and self._open is not None:
                self._open.finish(ends_utterance=final and release is releases[-1])
                self._open = None
        self._cond.notify_all()

    # -- reader side (the generation thread) -----------------------------------------------

    def bind(self, tokenizer: TextTokenizer, max_segment_tokens: int = MAX_SEGMENT_TOKENS) -> None:
        """Ties the feed to a model's tokenizer; writes made before are processed now."""
        with self._cond:
            if self._tokenizer is not None:
                raise RuntimeError("this TextFeed already feeds a stream: make one per stream")
            self._tokenizer, self._max_tokens = tokenizer, max_segment_tokens
            pending, self._pending = self._pending, []
            for kind, text in pending:
                if kind == "write":
                    self._apply(self._utterance().push(text))
                else:
                    self._end_utterance()
            if self.closed:
                self._end_utterance()

    @property
    def _stopped(self) -> bool:
        return self.cancelled or self._error is not None

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self.cancelled:
            raise Cancelled()

    def segments(self) -> Iterator[SegmentText]:
        """The stream's segments in order, each as soon as its first token is known."""
        index = 0
        while True:
            with self._cond:
                while index >= len(self._segments) and not self.closed:
                    self._check()
                    self._cond.wait()
                self._check()
                if index >= len(self._segments):
                    return
                segment = self._segments[index]
                self._segments[index] = None  # the reader holds it now; keeps memory flat
            yield segment
            index += 1

    def is_last(self, segment: SegmentText) -> bool:
        """Whether `segment` is known, now, to be the stream's last."""
        with self._cond:
            return (self.closed and segment.complete and segment.index == len(self._segments) - 1)

    @property
    def segments_made(self) -> int:
        """How many segments the text written so far has made."""
        with self._cond:
            return len(self._segments)

    @property
    def spoke(self) -> bool:
        """Whether any segment was made (else the input had nothing to speak)."""
        return self.segments_made > 0
