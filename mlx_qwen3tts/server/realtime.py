"""`WS /v1/realtime?model=M`: OpenAI's Realtime API, for speech out.

What speech clients (Open WebUI's and wyoming-openai's `openai-realtime` engines, the openai
SDK's `client.realtime`) do with it:

    <- session.created
    -> session.update {session: {audio.output {voice, format audio/pcm 24 kHz, speed}, instructions}}
    <- session.updated
    -> response.create {response: {input: [message items]}}   (or conversation.item.create first)
    <- response.created, response.output_item.added, response.content_part.added,
       response.output_audio.delta (base64 pcm16) ..., response.output_audio.done,
       response.content_part.done, response.output_item.done, response.done (completed)
    -> response.cancel  <- response.done (cancelled)

A response's text (all its items) goes into one `TextFeed`: one generation context. The
session's `instructions` are a chat model's system prompt, so they are never refused: they
become the voice instruction only on a model that takes one (1.7B CustomVoice, VoiceDesign).
Every other problem is an `error` event, and the session goes on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

from mlx_qwen3tts import SAMPLE_RATE, SpeechOptions, TextFeed

from .encoders import to_pcm16
from .errors import APIError
from .pump import Pump
from .params import OPENAI_MODELS, stream_options
from .realtime_events import SessionSettings, error_event, item_text, new_id, response_object
from .scheduler import QueueFull
from .state import Record, ServerState

logger = logging.getLogger(__name__)


class _Gone(Exception):
    """The client has gone: nothing more can be sent."""


def model_accepted(model: str | None, model_id: str) -> bool:
    """Ours, OpenAI's speech models, or any of OpenAI's realtime models: all name the one model here."""
    return model in (None, "", model_id) or model in OPENAI_MODELS or "realtime" in model or model.startswith(
        "gpt-4o-mini-tts")


class RealtimeSession:
    def __init__(self, ws, state: ServerState, model: str | None):
        self.ws, self.state = ws, state
        self.model = model or state.settings.model_id
        self.settings = SessionSettings()
        self.items: list[str] = []  # texts of conversation items not yet spoken
        self.response: asyncio.Task | None = None
        self.feed: TextFeed | None = None
        self.cancelled = False  # the response in progress was cancelled by the client
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self._send({"type": "session.created", "event_id": new_id("event"),
                          "session": self.settings.described(self.model)})
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._handle(message)
        except _Gone:
            pass
        finally:
            if self.feed is not None:
                self.feed.cancel()
            if self.response is not None:
                await asyncio.gather(self.response, return_exceptions=True)

    async def _handle(self, message: dict) -> None:
        event_id = None
        try:
            try:
                event = json.loads(message.get("text") or "")
            except json.JSONDecodeError as e:
                raise APIError(400, f"an event is not valid JSON ({e})", "invalid_json") from None
            if not isinstance(event, dict):
                raise APIError(400, "an event must be a JSON object with a \"type\"", "invalid_event")
            event_id, kind = event.get("event_id"), event.get("type")
            handler = {"session.update": self._session_update, "conversation.item.create": self._item_create,
                       "response.create": self._response_create, "response.cancel": self._response_cancel,
                       "input_audio_buffer.clear": self._ignore, "conversation.item.delete": self._ignore}.get(kind)
            if handler is None:
                hint = " (this server takes text and speaks it; audio input is not taken)" \
                    if str(kind).startswith("input_audio_buffer") else ""
                raise APIError(400, f"unsupported event type {json.dumps(kind)}{hint}; send session.update, "
                                    "conversation.item.create, response.create or response.cancel",
                               "invalid_event_type", "type")
            await handler(event)
        except APIError as e:
            await self._send(error_event(e, event_id))
        except (AttributeError, TypeError, ValueError) as e:  # a field of the wrong shape somewhere
            logger.debug("realtime event refused", exc_info=e)
            await self._send(error_event(APIError(400, f"the event does not have the shape OpenAI's Realtime API "
                                                       f"gives it ({type(e).__name__}: {e})", "invalid_event"),
                                         event_id))

    async def _ignore(self, event: dict) -> None:
        pass

    async def _session_update(self, event: dict) -> None:
        settings = self.settings.merged(event.get("session") or {})
        try:
            self._options(settings)  # a voice or speed the model cannot take is refused now
        except APIError as e:
            if e.code != "missing_voice":  # a Base model's voice may still come with the response
                raise
        self.settings = settings
        await self._send({"type": "session.updated", "event_id": new_id("event"),
                          "session": settings.described(self.model)})

    async def _item_create(self, event: dict) -> None:
        item = event.get("item") or {}
        text = item_text(item)
        item_id = item.get("id") or new_id("item")
        self.items.append(text)
        await self._send({"type": "conversation.item.created", "event_id": new_id("event"),
                          "previous_item_id": None, "item": {**item, "id": item_id, "object": "realtime.item",
                                                             "status": "completed"}})

    def _options(self, settings: SessionSettings) -> SpeechOptions:
        """The options of `settings`; instructions only where the model takes them."""
        tts = self.state.require_tts()
        data = {**settings.extra, "voice": settings.voice, "speed": settings.speed}
        if settings.instructions and settings.instructions.strip() and tts.config.supports_instruct:
            data["instructions"] = settings.instructions[: self.state.settings.max_input_chars]
        options = stream_options(data, self.state, voice_required=False)
        # Live text is read as it comes, as on the WebSocket, unless the session asked otherwise.
        return options.with_values(text_layout="streaming") if options.text_layout == "auto" else options

    async def _response_create(self, event: dict) -> None:
        if self.response is not None and not self.response.done():
            raise APIError(400, "a response is in progress: wait for its response.done, or send response.cancel",
                           "conversation_already_has_active_response")
        config = event.get("response") or {}
        settings = self.settings.merged(config)
        if "input" in config:
            if not isinstance(config["input"], list):
                raise APIError(400, "response.input must be a list of message items", "invalid_value", "input")
            texts = [item_text(item) for item in config["input"]]
        else:
            texts, self.items = self.items, []
        text = " ".join(t.strip() for t in texts if t.strip())
        if not any(ch.isalnum() for ch in text):
            raise APIError(400, "nothing to speak: send the text as an input_text message, in response.input or "
                                "with conversation.item.create first", "empty_input")
        if len(text) > self.state.settings.max_input_chars:
            raise APIError(400, f"the response's text is {len(text)} characters; the limit is "
                                f"{self.state.settings.max_input_chars}", "input_too_long")
        options = self._options(settings)
        voice = options.speaker or settings.voice
        self.cancelled = False
        self.feed = feed = TextFeed()  # one live-text context for the whole response
        feed.write(text)
        feed.close()
        self.response = asyncio.create_task(self._respond(feed, options, voice, len(text)))

    async def _response_cancel(self, event: dict) -> None:
        if self.response is not None and not self.response.done():
            self.cancelled = True
            self.feed.cancel()

    async def _respond(self, feed: TextFeed, options: SpeechOptions, voice: str | None, chars: int) -> None:
        response_id, item_id = new_id("resp"), new_id("item")
        record, arrived = Record("realtime", chars=chars, format="pcm"), time.perf_counter()
        status, error, frames = "completed", None, 0
        await self._send({"type": "response.created", "event_id": new_id("event"),
                          "response": response_object(response_id, "in_progress", voice)})
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        try:
            await self._send({"type": "response.output_item.added", "event_id": new_id("event"),
                              "response_id": response_id, "output_index": 0, "item": response_object(
                                  response_id, "in_progress", voice, item_id)["output"][0]})
            await self._send({"type": "response.content_part.added", "event_id": new_id("event"), **where,
                              "content_index": 0, "part": {"type": "audio", "transcript": ""}})
            frames = await self._speak(feed, options, where, record, arrived)
            if self.cancelled:
                status = "cancelled"
        except APIError as e:
            status, error = "failed", e
        except _Gone:
            record.finish_reason = "client_gone"
            return
        except Exception as e:
            logger.exception("realtime response failed")
            status, error = "failed", APIError(500, f"generation failed ({type(e).__name__})", "generation_failed")
        finally:
            record.finish_reason = record.finish_reason or status
            self.state.log(record)
        await self._send({"type": "response.output_audio.done", "event_id": new_id("event"), **where,
                          "content_index": 0})
        await self._send({"type": "response.content_part.done", "event_id": new_id("event"), **where,
                          "content_index": 0, "part": {"type": "audio", "transcript": ""}})
        item = response_object(response_id, status, voice, item_id)["output"][0]
        await self._send({"type": "response.output_item.done", "event_id": new_id("event"),
                          "response_id": response_id, "output_index": 0, "item": item})
        if error is not None:
            await self._send(error_event(error))
        await self._send({"type": "response.done", "event_id": new_id("event"), "response": response_object(
            response_id, status, voice, item_id, error=error, frames=frames)})

    async def _speak(self, feed: TextFeed, options: SpeechOptions, where: dict, record: Record, arrived: float) -> int:
        try:
            turn = await self.state.scheduler.acquire("realtime")
        except QueueFull as e:
            raise self.state.busy_error(e) from None
        try:
            record.queued, record.ahead = turn.waited, turn.ahead
            generation = Pump(self.state.tts.stream(feed, options), feed, self.state.executor)
            try:
                while (chunk := await generation.next()) is not None:
                    if len(chunk.samples):
                        if record.ttfb is None:
                            record.ttfb = time.perf_counter() - arrived
                        delta = base64.b64encode(to_pcm16(chunk.samples).tobytes()).decode()
                        await self._send({"type": "response.output_audio.delta", "event_id": new_id("event"),
                                          **where, "content_index": 0, "delta": delta})
                        record.audio_seconds += len(chunk.samples) / SAMPLE_RATE
                    if chunk.index == 0:
                        generation.first_sent()
                    record.frames = chunk.frames
                    if chunk.is_last:
                        record.finish_reason = chunk.finish_reason or "eos"
            finally:
                generation.cancel()
                await generation.wait()
            return record.frames
        finally:
            record.compute = time.perf_counter() - turn.granted
            self.state.scheduler.release(turn)

    async def _send(self, event: dict) -> None:
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps(event))
            except Exception:
                if self.feed is not None:
                    self.feed.cancel()
                raise _Gone() from None
