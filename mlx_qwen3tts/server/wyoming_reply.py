"""Speaking one Wyoming reply: its text in one feed (or, after giving the model back, one feed
per part), on a turn of the shared model, as audio-start, audio-chunk... and audio-stop.

A streamed reply takes the model once it has words to speak. When another job waits and no
text came for `ws_idle_seconds`, it speaks what it has and gives the model back; later text
goes on in the same audio from a new context, queued behind that job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event

from mlx_qwen3tts import SAMPLE_RATE, SpeechOptions, TextFeed

from .encoders import to_pcm16
from .pump import Pump
from .scheduler import Turn, acquire_or_drop
from .state import Record, ServerState

logger = logging.getLogger(__name__)

RATE, WIDTH, CHANNELS = SAMPLE_RATE, 2, 1


class Gone(Exception):
    """The client has gone: nothing more can be sent."""


@dataclass
class Reply:
    """One reply's text, voice and progress."""

    live: bool  # streamed in pieces (synthesize-start ... synthesize-stop)
    record: Record
    options: SpeechOptions | None = None  # None: refused (its error was sent); a stream still gets synthesize-stopped
    feed: TextFeed | None = None  # where new text goes
    speakable: bool = False  # `feed` has a letter or digit to speak
    received: list[str] = field(default_factory=list)  # every piece, for the copy rule
    copy: str | None = None  # the text of a plain synthesize sent inside the stream
    chars: int = 0
    full: bool = False  # later pieces are dropped (past the length limit, or the reply is over)
    first_text: float = 0.0
    last_text: float = 0.0
    ended: bool = False  # no more text will come
    opened: bool = False  # audio-start was sent
    frames: int = 0  # frames of the finished parts
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # text or the end came

    def leave(self, feed: TextFeed) -> None:
        """New text goes to a new feed from now on (if `feed` is the current one)."""
        if self.feed is feed:
            self.feed, self.speakable = None, False


class Speaker:
    """Speaks replies for one connection through `send` (which raises `Gone` once the client left)."""

    def __init__(self, state: ServerState, send: Callable[[Event], Awaitable[None]]):
        self.state, self._send = state, send

    async def speak(self, reply: Reply) -> None:
        """The reply's audio from audio-start to audio-stop; a failure is the client's error event."""
        try:
            await self._speak(reply)
            if not reply.opened:  # a reply that made no audio still gets its start and stop
                await self._open(reply)
            await self._send(AudioStop().event())
        except (Gone, asyncio.CancelledError):
            raise
        except Exception as e:
            logger.exception("wyoming generation failed")
            reply.record.finish_reason = "error"
            await self._error(f"generation failed ({type(e).__name__}: {e}); the server keeps running",
                              "generation_failed")

    async def _speak(self, reply: Reply) -> None:
        """Each part of the reply's text, on a turn of its own, until its text has ended."""
        while True:
            while not (reply.speakable or reply.ended):
                reply.changed.clear()
                await reply.changed.wait()
            if not reply.speakable:
                return
            feed = reply.feed
            turn = await acquire_or_drop(self.state.scheduler, "wyoming", feed, reply.leave, self._error)
            if turn is None:
                continue
            if not reply.record.queued:
                reply.record.queued, reply.record.ahead = turn.waited, turn.ahead
            try:
                await self._generate(reply, feed, turn)
            finally:
                reply.record.compute += time.perf_counter() - turn.granted
                self.state.scheduler.release(turn)
                reply.leave(feed)

    async def _generate(self, reply: Reply, feed: TextFeed, turn: Turn) -> None:
        generation = Pump(self.state.tts.stream(feed, reply.options), feed, self.state.executor)
        giving_back = asyncio.create_task(self._give_back_when_wanted(reply, feed, turn)) if reply.live else None
        record, frames = reply.record, 0
        try:
            while (chunk := await generation.next()) is not None:
                if len(chunk.samples):
                    await self._audio(reply, chunk.samples)
                if chunk.index == 0:
                    generation.first_sent()
                frames = chunk.frames
                if chunk.is_last:
                    record.finish_reason = chunk.finish_reason or "eos"
        finally:
            if giving_back is not None:
                giving_back.cancel()
            generation.cancel()  # a no-op once it has ended
            await generation.wait()
            reply.frames += generation.frames or frames
            record.frames = reply.frames

    async def _give_back_when_wanted(self, reply: Reply, feed: TextFeed, turn: Turn) -> None:
        await turn.wanted.wait()
        while reply.feed is feed and not reply.ended:
            idle = self.state.settings.ws_idle_seconds - (time.perf_counter() - reply.last_text)
            if idle <= 0:
                # close() speaks what the feed holds, then the turn goes back; later text waits its turn.
                feed.close()
                reply.leave(feed)
                logger.info("wyoming reply waiting for text gives the model to the next job")
                return
            await asyncio.sleep(idle)

    async def _open(self, reply: Reply) -> None:
        await self._send(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        reply.opened = True

    async def _audio(self, reply: Reply, samples) -> None:
        if not reply.opened:
            await self._open(reply)
        record = reply.record
        if record.ttfb is None:
            record.ttfb = time.perf_counter() - reply.first_text
        await self._send(AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS,
                                    audio=to_pcm16(samples).tobytes()).event())
        record.audio_seconds += len(samples) / RATE

    async def _error(self, text: str, code: str) -> None:
        await self._send(Error(text=text, code=code).event())
