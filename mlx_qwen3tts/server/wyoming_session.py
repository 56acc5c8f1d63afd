"""One Wyoming connection: `describe`, `synthesize`, and text streamed in pieces into one reply.

A reply is one `TextFeed` spoken in one voice: a `synthesize` writes its text whole; a
`synthesize-start` ... `synthesize-stop` sequence writes each `synthesize-chunk` as it comes,
cut anywhere, so the reply keeps one generation context and one decoder and its audio starts
after the first words. Each reply is one `audio-start`, `audio-chunk`s from the first frame on,
and `audio-stop` (a streamed one then `synthesize-stopped`); replies are spoken in order.

Home Assistant sends the whole streamed text again as a plain `synthesize` for servers that do
not stream: inside a stream it is spoken only if no piece came, and right after one a copy of
its text is not spoken again.
How a reply is spoken, and shares the model, is wyoming_reply.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from mlx_qwen3tts import TextFeed
from mlx_qwen3tts.text import clean_text

from .errors import APIError
from .state import Record, ServerState
from .wyoming_reply import Gone, Reply, Speaker
from .wyoming_voices import describe, reply_options

logger = logging.getLogger(__name__)

EVENTS = ("describe", "synthesize", "synthesize-start", "synthesize-chunk", "synthesize-stop", "ping")


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _check_format(data: dict) -> None:
    fmt = data.get("text_format")
    if fmt not in (None, "text"):
        raise APIError(400, f"text_format {fmt!r} is not supported: send plain text (text_format \"text\")",
                       "unsupported_text_format")


class WyomingSession(AsyncEventHandler):
    """The events of one client connection; `defaults` are stream options under every request's."""

    def __init__(self, reader, writer, state: ServerState, defaults: dict | None = None):
        super().__init__(reader, writer)
        self.state, self.defaults = state, defaults
        self.stream: Reply | None = None  # the streamed reply still taking text
        self.streamed: str | None = None  # the last streamed reply's text, whose plain copy is not spoken
        self.tail: asyncio.Task | None = None  # the last reply's task: each waits for the one before
        self.tasks: set[asyncio.Task] = set()
        self.gone = False
        self._send_lock = asyncio.Lock()
        self.speaker = Speaker(state, self._send)

    # -- the client's events ---------------------------------------------------------------

    async def handle_event(self, event: Event) -> bool:
        try:
            try:
                await self._dispatch(event)
            except APIError as e:
                await self._error(e.message, e.code)
            except Gone:
                raise
            except Exception as e:  # a bug must not end the connection, nor the server
                logger.exception("wyoming: %s event failed", event.type)
                await self._error(f"internal error ({type(e).__name__}); the server keeps running, see its log",
                                  "internal_error")
        except Gone:
            return False
        return not self.gone

    async def _dispatch(self, event: Event) -> None:
        kind, data = event.type, event.data or {}
        if Describe.is_type(kind):
            await self._send(describe(self.state).event())
        elif Ping.is_type(kind):
            await self._send(Pong(text=data.get("text")).event())
        elif Synthesize.is_type(kind):
            self._synthesize(data)
        elif SynthesizeStart.is_type(kind):
            self._start(data)
        elif SynthesizeChunk.is_type(kind):
            self._chunk(data)
        elif SynthesizeStop.is_type(kind):
            self._stop()
        else:
            raise APIError(400, f"unknown event {kind!r}: this text-to-speech server takes {', '.join(EVENTS)}",
                           "unknown_event")

    def _synthesize(self, data: dict) -> None:
        text = data.get("text")
        if self.stream is not None:  # the whole text again, for servers that do not stream: spoken already,
            self.stream.copy = text if isinstance(text, str) else None  # unless no piece comes at all
            return
        copy, self.streamed = self.streamed, None
        if isinstance(text, str) and copy is not None and _same_text(text, copy):
            logger.debug("wyoming: synthesize repeating the streamed reply ignored")
            return
        if not isinstance(text, str):
            raise APIError(400, "synthesize needs \"text\": the text to speak", "missing_text")
        _check_format(data)
        limit = self.state.settings.max_input_chars
        if len(text) > limit:
            raise APIError(400, f"the text is {len(text)} characters; the limit is {limit}: send it in several "
                                "synthesize events, or stream it (synthesize-start, synthesize-chunk...)",
                           "text_too_long")
        try:
            clean_text(text)
        except ValueError as e:
            raise APIError(400, f"{e}: synthesize needs words to speak", "empty_text") from None
        reply = Reply(live=False, record=Record("wyoming", chars=len(text), format="pcm"))
        reply.options = reply_options(self.state, data.get("voice"), live=False, defaults=self.defaults)
        reply.feed, reply.speakable, reply.ended = TextFeed(text), True, True
        reply.first_text = reply.last_text = time.perf_counter()
        self._queue(reply)

    def _start(self, data: dict) -> None:
        if self.stream is not None:
            raise APIError(400, "a streamed reply is open already: end it with synthesize-stop first",
                           "stream_open")
        self.streamed = None
        reply = self.stream = Reply(live=True, record=Record("wyoming", format="pcm+stream"))
        try:
            _check_format(data)
            reply.options = reply_options(self.state, data.get("voice"), live=True, defaults=self.defaults)
        finally:
            self._queue(reply)  # a refused stream still answers synthesize-stop with synthesize-stopped

    def _chunk(self, data: dict) -> None:
        reply, text = self.stream, data.get("text")
        if reply is None:
            raise APIError(400, "synthesize-chunk outside a streamed reply: send synthesize-start first (or one "
                                "synthesize event with the whole text)", "no_stream")
        if not isinstance(text, str):
            raise APIError(400, "synthesize-chunk needs \"text\": a piece of the text", "missing_text")
        if reply.options is None or reply.full or self.gone:
            return
        limit = self.state.settings.max_input_chars
        if reply.chars + len(text) > limit:
            reply.full = True
            raise APIError(400, f"a streamed reply is at most {limit} characters: this piece and the rest are "
                                "dropped; start a new reply for more text", "text_too_long")
        if reply.feed is None:
            reply.feed = TextFeed()
        reply.feed.write(text)
        reply.received.append(text)
        reply.chars += len(text)
        reply.record.chars = reply.chars
        reply.last_text = time.perf_counter()
        if not reply.speakable and any(ch.isalnum() for ch in text):
            reply.speakable = True
            reply.first_text = reply.first_text or reply.last_text
        reply.changed.set()

    def _stop(self) -> None:
        reply = self.stream
        if reply is None:
            raise APIError(400, "synthesize-stop without synthesize-start: nothing is being streamed", "no_stream")
        try:
            if not reply.received and reply.copy:  # a stream whose text came only as its plain copy
                self._chunk({"text": reply.copy})
        finally:
            self.stream, self.streamed = None, "".join(reply.received)
            reply.ended = True
            if reply.feed is not None:
                reply.feed.close()
            reply.changed.set()

    # -- replies, in order -------------------------------------------------------------------

    def _queue(self, reply: Reply) -> None:
        task = asyncio.create_task(self._reply(reply, self.tail))
        self.tail = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, reply: Reply, previous: asyncio.Task | None) -> None:
        record = reply.record
        try:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            if reply.options is not None:
                await self.speaker.speak(reply)
                reply.full = True  # spoken to its end (or failed): later pieces have nowhere to go
            while reply.live and not reply.ended:
                reply.changed.clear()
                await reply.changed.wait()
            if reply.live:
                await self._send(SynthesizeStopped().event())
        except (Gone, asyncio.CancelledError):
            record.finish_reason = "client_gone"
        finally:
            reply.full = True  # text still streaming in has nowhere to go now
            if reply.feed is not None:
                reply.feed.cancel()
            if reply.options is not None:
                self.state.log(record)

    # -- sending -----------------------------------------------------------------------------

    async def _error(self, text: str, code: str) -> None:
        await self._send(Error(text=text, code=code).event())

    async def _send(self, event: Event) -> None:
        if self.gone:
            raise Gone()
        async with self._send_lock:
            try:
                await self.write_event(event)
            except (ConnectionError, OSError, RuntimeError):
                self.gone = True
                raise Gone() from None

    async def disconnect(self) -> None:
        """The client went (or the server stops): every reply stops within a frame."""
        self.gone = True
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
