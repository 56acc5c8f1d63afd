"""A stream's text as a `TextFeed`: `as_feed` for every form a caller may give, and `feed_from`
for an iterable of pieces, pulled by a thread of its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

from .clean import clean_text
from .feed import TextFeed


class _Readers:
    """Threads that pull text iterables, kept for the life of the process.

    A producer may run MLX itself (an LLM's token generator), and with MLX 0.32 a thread that
    ran compiled functions and ends before the process can abort it at exit; so these threads
    never end: an idle one takes the next job, and one is added when none is idle.
    """

    def __init__(self):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def run(self, job) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                threading.Thread(target=self._serve, name="mlx-qwen3tts-text", daemon=True).start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            job()
            job = None
            with self._lock:
                self._idle += 1


_READERS = _Readers()


def feed_from(pieces: Iterable[str]) -> TextFeed:
    """A feed that a background thread fills from `pieces` (an LLM's deltas, a pipe's lines),
    so the producer runs while the speech is generated; it closes at the end of `pieces`,
    and stops pulling once the feed is cancelled."""
    feed = TextFeed()

    def pull() -> None:
        try:
            for piece in pieces:
                if feed.cancelled:
                    return
                feed.write(piece)
            feed.close()
        except BaseException as e:  # the stream's reader raises it
            feed.fail(e)

    _READERS.run(pull)
    return feed


def as_feed(text: str | TextFeed | Iterable[str], tokenizer, max_segment_tokens: int) -> TextFeed:
    """`text` as a feed bound to `tokenizer`: a str written whole (and checked now), a feed as
    it is, any other iterable of pieces pulled by a thread of its own (`feed_from`)."""
    if isinstance(text, str):
        clean_text(text)  # bad text fails here, before the first chunk
        feed = TextFeed(text)
    elif isinstance(text, TextFeed):
        feed = text
    elif isinstance(text, Iterable) and not isinstance(text, (bytes, bytearray)):
        feed = feed_from(text)
    else:
        raise TypeError(f"text must be a str, a TextFeed or an iterable of str, not {type(text).__name__}")
    feed.bind(tokenizer, max_segment_tokens)
    return feed
