"""`POST /v1/audio/speech`: the audio streamed as it is made, through one encoder per response.

The response is an ASGI app of its own so that it can (1) wait for the model in the queue and
still answer 503 or a 4xx in JSON, since nothing has been sent yet, (2) send the status line
only once the first audio exists, and (3) watch for the client going away the whole time:
then generation is cancelled within a frame and the model goes to the next request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

from starlette.responses import Response

from mlx_qwen3tts import SAMPLE_RATE, TextFeed

from .encoders import MEDIA_TYPES, make_encoder
from .errors import APIError
from .pump import Pump
from .params import SpeechRequest
from .scheduler import QueueFull
from .state import Record, ServerState

logger = logging.getLogger(__name__)


def _unexpected(error: Exception, request_id: str) -> APIError:
    if isinstance(error, ValueError):
        return APIError(400, str(error), "invalid_request")
    logger.error("speech %s: unexpected error", request_id, exc_info=error)
    return APIError(500, f"internal error ({type(error).__name__}); the server keeps running, see its log",
                    "internal_error")


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class SpeechResponse(Response):
    """One speech request's whole life: queue, generation, encoding, sending, its log line."""

    background = None  # a Response's field that FastAPI sets; none here

    def __init__(self, state: ServerState, request: SpeechRequest, arrived: float):
        self.state, self.request, self.arrived = state, request, arrived
        self.record = Record("speech", chars=len(request.text), format=request.response_format)
        if request.stream_format == "sse":
            self.record.format += "+sse"
        self._gone = asyncio.Event()
        self._generation: Pump | None = None
        self._started = False

    async def __call__(self, scope, receive, send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await self._serve(send)
        except Exception as e:
            error = e if isinstance(e, APIError) else _unexpected(e, self.record.id)
            self.record.finish_reason = self.record.finish_reason or f"error:{error.code}"
            if not self._started:
                await self._send_json(send, error)
            else:  # the status line has gone: all that is left is to end the body early
                logger.warning("speech %s failed after its audio began: %s", self.record.id, error.message)
        finally:
            watcher.cancel()
            self.state.log(self.record)

    async def _watch(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone.set()
        if self._generation is not None:
            self._generation.cancel()

    async def _turn(self):
        waiting = asyncio.create_task(self.state.scheduler.acquire(f"speech {self.record.id}"))
        gone = asyncio.create_task(self._gone.wait())
        try:
            await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not waiting.done():
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return None
        try:
            return waiting.result()
        except QueueFull as e:
            raise self.state.busy_error(e) from None

    async def _serve(self, send) -> None:
        state, request, record = self.state, self.request, self.record
        tts = state.require_tts()
        turn = await self._turn()
        if turn is None:
            record.finish_reason = "client_gone"
            return
        record.queued, record.ahead = turn.waited, turn.ahead
        feed = TextFeed(request.text)
        try:
            stream = tts.stream(feed, request.options)
            self._generation = generation = Pump(stream, feed, state.executor)
            if self._gone.is_set():
                generation.cancel()
            try:
                await self._stream(send, generation)
            finally:
                generation.cancel()  # a no-op once it has ended
                await generation.wait()
        finally:
            record.compute = time.perf_counter() - turn.granted
            state.scheduler.release(turn)

    async def _stream(self, send, generation: Pump) -> None:
        request, record = self.request, self.record
        encoder = make_encoder(request.response_format, SAMPLE_RATE)
        sse = request.stream_format == "sse"
        pending, samples = encoder.header(), 0
        while (chunk := await generation.next()) is not None:
            if not self._started:
                await self._start(send, sse)
            pending += encoder.encode(chunk.samples)
            samples += len(chunk.samples)
            if chunk.is_last:
                pending += encoder.finish()
                record.finish_reason = chunk.finish_reason or "eos"
            if pending:
                await self._body(send, pending, sse, generation)
                pending = b""
            if chunk.index == 0:
                generation.first_sent()
            record.frames, record.audio_seconds = chunk.frames, samples / SAMPLE_RATE
        if self._gone.is_set():
            record.finish_reason = "client_gone"
            return
        if sse:
            tokens = len(self.state.tts.tokenizer.encode(request.text))
            usage = {"input_tokens": tokens, "output_tokens": record.frames, "total_tokens": tokens + record.frames}
            await send({"type": "http.response.body", "more_body": True,
                        "body": _sse({"type": "speech.audio.done", "usage": usage})})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _start(self, send, sse: bool) -> None:
        media = "text/event-stream" if sse else MEDIA_TYPES[self.request.response_format]
        headers = [(b"content-type", media.encode()), (b"cache-control", b"no-store"),
                   (b"x-request-id", self.record.id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self._started = True

    async def _body(self, send, data: bytes, sse: bool, generation: Pump) -> None:
        if self._gone.is_set():
            return
        if self.record.ttfb is None:
            self.record.ttfb = time.perf_counter() - self.arrived
            self.record.frames_at_first_byte = generation.frames
        if sse:
            data = _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _send_json(self, send, error: APIError) -> None:
        body = json.dumps(error.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
