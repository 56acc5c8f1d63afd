"""One `tts.stream()` run on a server thread, its chunks handed to the event loop as they come.

The stream is advanced and closed on one thread only, the pump's; the event loop stops it
through the stream's `TextFeed` (`cancel()` is thread-safe and ends generation within a
frame), then waits for the pump to close the stream, which frees the model for the next job.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor

from mlx_qwen3tts import AudioChunk, TextFeed

# The pump waits this long at most for the first chunk to be sent before it asks for the next
# one: on a CPU the generation and the event loop compete for the interpreter, and the first
# bytes matter most. The wait is one hand-over across threads, well under a millisecond.
FIRST_SEND_WAIT = 1.0
_END = object()


class Pump:
    """Chunks of `stream` (fed by `feed`) as they are made; `cancel()` stops it within a frame."""

    def __init__(self, stream, feed: TextFeed, executor: Executor):
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._feed = feed
        self._first_sent = threading.Event()
        self._ended = False
        self.frames = 0  # frames generated, as of the last chunk handed over
        self._done = self._loop.run_in_executor(executor, self._pump, stream)

    def _pump(self, stream) -> None:
        try:
            for chunk in stream:
                self._hand(chunk)
                if chunk.index == 0 and not chunk.is_last:
                    self._first_sent.wait(FIRST_SEND_WAIT)
        except BaseException as e:  # the event loop raises it where the chunk would have been
            self._hand(e)
        finally:
            stream.close()
            self._hand(_END)

    def _hand(self, item) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    async def next(self) -> AudioChunk | None:
        """The next chunk; None once the stream has ended (its generation errors are raised)."""
        if self._ended:
            return None
        item = await self._queue.get()
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, BaseException):
            raise item
        self.frames = item.frames
        return item

    def first_sent(self) -> None:
        """The first chunk is on its way to the client: generation goes on."""
        self._first_sent.set()

    def cancel(self) -> None:
        self._feed.cancel()
        self._first_sent.set()

    async def wait(self) -> None:
        """Until the pump has closed the stream (the model is free then)."""
        await asyncio.shield(self._done)

    @property
    def running(self) -> bool:
        return not self._done.done()
