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
from dataclasses import dataclass

from mlx_qwen3tts import SAMPLE_RATE, SpeechOptions, TextFeed

from .encoders import make_encoder
from .errors import APIError
from .pump import Pump
from .params import check_model, stream_options
from .scheduler import QueueFull, Turn
from .state import Record, ServerState

logger = logging.getLogger(__name__)

WS_FORMATS = ("pcm", "pcm_f32")
CLIENT_TYPES = ("session.config", "input.text", "input.flush", "input.done", "cancel")


class _Gone(Exception):
    """The client has gone: nothing more can be sent."""


@dataclass
class _Text:  # a speakable utterance's text, for its log line
    began: float
    chars: int


@dataclass
class _OnAir:  # the utterance being spoken, and when its own work began
    record: Record
    text: _Text
    started: float


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
        self.utterance = 0  # the session's utterance numbers, across its streams
        self.texts: deque[_Text] = deque()  # speakable utterances written, not yet on air
        self.on_air: _OnAir | None = None
        self.last_done = 0.0  # when the last utterance ended
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
            self.texts[-1].chars += len(text)
        elif any(ch.isalnum() for ch in text):
            self.speakable = True
            self.texts.append(_Text(self.last_text, self.chars))
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
        self.texts.clear()

    # -- speaking -----------------------------------------------------------------------------

    async def _speak(self, feed: TextFeed, options: SpeechOptions, fmt: str) -> None:
        task = asyncio.current_task()
        try:
            try:
                turn = await self.state.scheduler.acquire("ws")
            except QueueFull as e:
                feed.cancel()
                self._leave(feed)
                await self._error(f"{e}; this text was dropped", "server_busy")
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
            if self.on_air is not None:  # an utterance cut short by the client leaving, or a failure
                self.on_air.record.frames = generation.frames
                self._finish("client_gone" if self.gone else "error")

    async def _chunk(self, chunk, encoder, turn: Turn, fmt: str) -> None:
        if len(chunk.samples):
            if self.on_air is None:
                await self._open(turn, fmt)
            record = self.on_air.record
            if record.ttfb is None:
                record.ttfb = time.perf_counter() - self.on_air.text.began
            await self._bytes(encoder.encode(chunk.samples))
            record.audio_seconds += len(chunk.samples) / SAMPLE_RATE
            record.frames = chunk.frames
        ends = chunk.end_of_utterance or (chunk.is_last and self.on_air is not None)
        if ends and (self.on_air is not None or chunk.finish_reason != "cancelled"):
            if self.on_air is None:  # an utterance that made no audio still gets its start and done
                await self._open(turn, fmt)
            reason = chunk.finish_reason or "eos"
            record = self._finish("client_gone" if self.gone and reason == "cancelled" else reason)
            await self._json({"type": "audio.done", "utterance": record.utterance,
                              "finish_reason": record.finish_reason, "audio_seconds": round(record.audio_seconds, 4)})

    async def _open(self, turn: Turn, fmt: str) -> None:
        text = self.texts.popleft() if self.texts else _Text(time.perf_counter(), 0)
        record = Record("ws", format=fmt, utterance=self.utterance, queued=turn.waited, ahead=turn.ahead)
        self.on_air = _OnAir(record, text, max(self.last_done, text.began, turn.granted))
        await self._json({"type": "audio.start", "utterance": self.utterance})

    def _finish(self, reason: str) -> Record:
        """Ends the utterance on air: its log line, and the next utterance number."""
        on_air, self.on_air = self.on_air, None
        self.last_done = time.perf_counter()
        record = on_air.record
        record.finish_reason, record.chars, record.compute = reason, on_air.text.chars, self.last_done - on_air.started
        self.state.log(record)
        self.utterance += 1
        return record

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
