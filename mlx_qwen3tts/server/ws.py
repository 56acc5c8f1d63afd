"""`WS /v1/audio/speech/stream`: live text in as JSON messages, PCM out as binary frames.

The text goes into one `TextFeed`, so a session's sentences share one generation context
and one decoder, as with `tts.stream(feed)` in process. A session takes a turn on the model
(scheduler.py) once it has something to speak and keeps it while it has text. When another
job is waiting it gives the model back at its next utterance boundary: at once if all it has
been sent is flushed, else at its next `input.flush`, or after `ws_idle_seconds` without text
(what it has is then spoken as an utterance). Text after that starts a new stream, queued
behind the jobs that were waiting. Nobody waiting, an idle session keeps its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque

from mlx_qwen3tts import SAMPLE_RATE, SpeechOptions, TextFeed

from .encoders import make_encoder
from .errors import APIError
from .pump import Pump
from .params import check_model, stream_options
from .scheduler import Turn, acquire_or_drop
from .state import ServerState
from .ws_utterances import Utterances

logger = logging.getLogger(__name__)

WS_FORMATS = ("pcm", "pcm_f32")
CLIENT_TYPES = ("session.config", "input.text", "input.flush", "input.done", "cancel")


class _Gone(Exception):
    """The client has gone: nothing more can be sent."""


class Session:
    def __init__(self, ws, state: ServerState):
        self.ws, self.state = ws, state
        self.options: SpeechOptions | None = None
        self.format = "pcm"
        self.feed: TextFeed | None = None  # where new text goes
        self.speakable = False  # the feed's current utterance has a letter or digit
        self.chars = 0  # characters in the feed's current utterance
        self.last_text = 0.0
        self.changed = asyncio.Event()  # text or a flush came: the give-back check runs again
        self.jobs: deque[tuple[asyncio.Task, TextFeed]] = deque()  # one per stream, oldest first
        self.granted: set[asyncio.Task] = set()
        self.done = self.gone = False
        self.utterances = Utterances(state)
        self._send_lock = asyncio.Lock()

    # -- the client's messages -------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self.gone:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._handle(message)
                if self.done and not self.jobs:
                    await self._close()
        except _Gone:
            pass
        finally:
            await self._shutdown()

    async def _handle(self, message: dict) -> None:
        if message.get("bytes") is not None:
            return await self._error("binary frames are not accepted: send JSON text messages "
                                     f"({', '.join(CLIENT_TYPES)})", "binary_not_accepted")
        try:
            data = json.loads(message.get("text") or "")
        except json.JSONDecodeError as e:
            return await self._error(f"a message is not valid JSON ({e}); send JSON objects", "invalid_json")
        kind = data.get("type") if isinstance(data, dict) else None
        handler = {"session.config": self._config, "input.text": self._text, "input.flush": self._flush,
                   "input.done": self._done, "cancel": self._cancel}.get(kind)
        if handler is None:
            shown = json.dumps(kind) if isinstance(data, dict) else f"a JSON {type(data).__name__}"
            return await self._error(f"unknown message type {shown}; send one of: {', '.join(CLIENT_TYPES)}",
                                     "unknown_message_type")
        try:
            await handler(data)
        except APIError as e:
            await self._error(e.message, e.code)

    async def _config(self, data: dict) -> None:
        if self.feed is not None:
            raise APIError(400, "session.config must come before the text, or after input.flush's audio "
                                "or a cancel", "session_busy")
        fmt = data.get("response_format") or "pcm"
        if fmt not in WS_FORMATS:
            raise APIError(400, f"unsupported response_format {json.dumps(fmt)}; choose one of: "
                                f"{', '.join(WS_FORMATS)}", "unsupported_format")
        check_model(data, self.state.settings.model_id)
        # A feed is live text: the library's default layout for it streams, so speech starts
        # after the first words instead of at each utterance's end.
        self.options = stream_options(data, self.state, voice_required=False)
        self.format = fmt
        voice = self.options.speaker or (data.get("voice") if self.options.voice is not None else None)
        await self._json({"type": "session.ready", "model": self.state.settings.model_id, "sample_rate": SAMPLE_RATE,
                          "channels": 1, "response_format": fmt, "voice": voice})


    async def _text(self, data: dict) -> None:
        text, limit = data.get("text"), self.state.settings.max_input_chars
        if not isinstance(text, str):
            raise APIError(400, "input.text needs \"text\": a string", "invalid_value")
        if self.done:
            raise APIError(400, "input.done was sent: open a new session for more text", "input_closed")
        if self.options is None:
            await self._config({})
        if self.chars + len(text) > limit:
            raise APIError(400, f"an utterance is at most {limit} characters: send input.flush between "
                                "sentences; this piece was dropped", "input_too_long")
        if self.feed is None:
            self.feed = TextFeed()
        self.feed.write(text)
        self.chars += len(text)
        self.last_text = time.perf_counter()
        if self.speakable:
            self.utterances.grew(len(text))
        elif any(ch.isalnum() for ch in text):
            self.speakable = True
            self.utterances.written(self.last_text, self.chars)
            if not any(feed is self.feed for _, feed in self.jobs):
                task = asyncio.create_task(self._speak(self.feed, self.options, self.format))
                self.jobs.append((task, self.feed))
        self.changed.set()

    def _leave(self, feed: TextFeed | None) -> None:
        """New text goes to a new feed from now on (if `feed` is the current one)."""
        if feed is self.feed:
            self.feed, self.speakable, self.chars = None, False, 0

    async def _flush(self, data: dict) -> None:
        if self.feed is not None:
            self.feed.flush()
        self.speakable, self.chars = False, 0
        self.changed.set()

    async def _done(self, data: dict) -> None:
        self.done = True
        if self.feed is not None:
            self.feed.close()  # a feed with nothing speakable has no job; it is simply dropped
        self._leave(self.feed)
        self.changed.set()

    async def _cancel(self, data: dict) -> None:
        for task, feed in self.jobs:
            feed.cancel()
            if task not in self.granted:
                task.cancel()
        self._leave(self.feed)
        self.utterances.waiting.clear()

    # -- speaking -----------------------------------------------------------------------------

    async def _speak(self, feed: TextFeed, options: SpeechOptions, fmt: str) -> None:
        task = asyncio.current_task()
        try:
            turn = await acquire_or_drop(self.state.scheduler, "ws", feed, self._leave, self._error)
            if turn is None:
                return
            self.granted.add(task)
            try:
                if not feed.cancelled:
                    await self._generate(feed, turn, options, fmt)
            finally:
                self.state.scheduler.release(turn)
        except _Gone:
            self.gone = True
        except Exception as e:
            logger.exception("websocket generation failed")
            with contextlib.suppress(_Gone):
                await self._error(f"generation failed ({type(e).__name__}: {e})", "generation_failed")
        finally:
            self.jobs = deque(job for job in self.jobs if job[0] is not task)
            self._leave(feed)
            if self.done and not self.jobs and not self.gone:
                await self._close()

    async def _generate(self, feed: TextFeed, turn: Turn, options: SpeechOptions, fmt: str) -> None:
        encoder = make_encoder(fmt, SAMPLE_RATE)
        generation = Pump(self.state.tts.stream(feed, options), feed, self.state.executor)
        giving_back = asyncio.create_task(self._give_back_when_wanted(feed, turn))
        try:
            while (chunk := await generation.next()) is not None:
                await self._chunk(chunk, encoder, turn, fmt)
                if chunk.index == 0:
                    generation.first_sent()
        finally:
            giving_back.cancel()
            generation.cancel()
            await generation.wait()
            if self.utterances.on_air is not None:  # cut short by the client leaving, or a failure
                self.utterances.on_air.record.frames = generation.frames
                self.utterances.finish("client_gone" if self.gone else "error")

    async def _chunk(self, chunk, encoder, turn: Turn, fmt: str) -> None:
        if len(chunk.samples):
            if self.utterances.on_air is None:
                await self._open(turn, fmt)
            await self._bytes(encoder.encode(chunk.samples))
            self.utterances.heard(len(chunk.samples), chunk.frames)
        on_air = self.utterances.on_air is not None
        ends = chunk.end_of_utterance or (chunk.is_last and on_air)
        if ends and (on_air or chunk.finish_reason != "cancelled"):
            if not on_air:  # an utterance that made no audio still gets its start and done
                await self._open(turn, fmt)
            reason = chunk.finish_reason or "eos"
            record = self.utterances.finish("client_gone" if self.gone and reason == "cancelled" else reason)
            await self._json({"type": "audio.done", "utterance": record.utterance,
                              "finish_reason": record.finish_reason, "audio_seconds": round(record.audio_seconds, 4)})

    async def _open(self, turn: Turn, fmt: str) -> None:
        await self._json({"type": "audio.start", "utterance": self.utterances.open(turn, fmt)})

    async def _give_back_when_wanted(self, feed: TextFeed, turn: Turn) -> None:
        await turn.wanted.wait()
        while self.feed is feed:
            idle = self.state.settings.ws_idle_seconds - (time.perf_counter() - self.last_text)
            if not self.speakable or idle <= 0:
                # close() speaks what the feed holds to its end, then the stream ends and the
                # turn goes back; later text goes to a new feed and a new turn.
                feed.close()
                self._leave(self.feed)
                logger.info("websocket session gives the model to the next job")
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), idle)
            except asyncio.TimeoutError:  # TimeoutError itself from 3.11 on
                pass

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, message: dict) -> None:
        if self.gone:
            raise _Gone()
        async with self._send_lock:
            try:
                await self.ws.send(message)
            except Exception:
                self.gone = True
                for _, feed in self.jobs:
                    feed.cancel()
                raise _Gone() from None

    async def _json(self, data: dict) -> None:
        await self._send({"type": "websocket.send", "text": json.dumps(data)})

    async def _bytes(self, data: bytes) -> None:
        if data:
            await self._send({"type": "websocket.send", "bytes": data})

    async def _error(self, message: str, code: str) -> None:
        await self._json({"type": "error", "message": message, "code": code})

    async def _close(self) -> None:
        if not self.gone:
            self.gone = True
            try:
                await self.ws.close(1000)
            except Exception:
                pass

    async def _shutdown(self) -> None:
        """The client went (or the session ended): every stream stops within a frame."""
        self.gone = True
        for task, feed in list(self.jobs):
            feed.cancel()
            if task not in self.granted:
                task.cancel()
        await asyncio.gather(*(task for task, _ in list(self.jobs)), return_exceptions=True)
