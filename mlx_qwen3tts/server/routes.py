"""The routes: OpenAI's speech API, voices, models, health, and the live-text WebSocket.

    POST   /v1/audio/speech           text -> audio, streamed as it is made (audio or SSE)
    GET    /v1/audio/voices           preset speakers, registered voices and aliases, under `data`
                                      and `voices` (the shape Open WebUI and Kokoro clients read)
    POST   /v1/audio/voices           register a voice from a recording (Base models)
    DELETE /v1/audio/voices/{name}
    GET    /v1/models                 the one model this server runs
    GET    /v1/audio/models           the same, as {"models": [...]} (Open WebUI reads it)
    GET    /health                    200 once the model is loaded
    WS     /v1/audio/speech/stream    live text in, PCM out (ws.py)
    WS     /v1/realtime?model=M       OpenAI's Realtime API, speech out (realtime.py)
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from . import errors
from .middleware import Guard
from .params import parse_json, speech_request
from .realtime import RealtimeSession, model_accepted
from .realtime_events import error_event
from .speech import SpeechResponse
from .state import ServerState, Settings
from .uploads import create_voice
from .voices import check_name
from .ws import Session

STARTED = int(time.time())


def create_app(settings: Settings, tts=None) -> FastAPI:
    """The server's ASGI app for `tts` (a loaded `mlx_qwen3tts.TTS`), or for one that `set_model`
    gives it later (until then /health answers 503 "loading")."""
    state = ServerState(settings, tts)
    app = FastAPI(title="mlx-qwen3tts", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = state
    errors.install(app)

    @app.get("/health")
    async def health():
        if state.tts is None:
            status = "failed" if state.load_error else "loading"
            return JSONResponse({"status": status, "model": settings.model_id, "error": state.load_error},
                                status_code=503)
        return {"status": "ok", "model": settings.model_id, "kind": state.tts.kind,
                "busy": state.scheduler.busy, "waiting": state.scheduler.waiting,
                "batch": {"max": state.scheduler.max_batch, "jobs": state.scheduler.in_use,
                          "streams": state.tts.batch.in_use}}

    def model_entry() -> dict:
        tts = state.require_tts()
        return {"id": settings.model_id, "name": settings.model_id, "object": "model", "created": STARTED,
                "owned_by": "mlx-qwen3tts", "kind": tts.kind, "size": tts.config.tts_model_size,
                "languages": tts.languages, "instructions": tts.config.supports_instruct,
                "sample_rate": tts.sample_rate}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_entry()]}

    @app.get("/v1/audio/models")
    async def audio_models():
        entry = model_entry()
        return {"object": "list", "models": [entry], "data": [entry]}

    @app.post("/v1/audio/speech")
    async def speech(request: Request):
        arrived = time.perf_counter()
        data = parse_json(await request.body())
        return SpeechResponse(state, speech_request(data, state), arrived)

    @app.get("/v1/audio/voices")
    async def voices():
        state.require_tts()
        listing = state.voices.listing()
        return {"object": "list", "data": listing, "voices": listing}

    @app.post("/v1/audio/voices")
    async def add_voice(request: Request):
        return await create_voice(request, state)

    @app.delete("/v1/audio/voices/{name}")
    async def delete_voice(name: str):
        state.require_tts()
        return state.registry.delete(check_name(name))

    @app.websocket("/v1/audio/speech/stream")
    async def speech_stream(websocket: WebSocket):
        await websocket.accept()
        if state.tts is None:
            await websocket.send_json({"type": "error", "message": "the model is still loading; try again in a "
                                       "few seconds", "code": "model_loading"})
            await websocket.close(1013)
            return
        await Session(websocket, state).run()

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket):
        await websocket.accept()
        model = websocket.query_params.get("model")
        refused = None
        if state.tts is None:
            refused = errors.APIError(503, "the model is still loading; try again in a few seconds", "model_loading")
        elif not model_accepted(model, settings.model_id):
            refused = errors.APIError(404, f"model {model!r} not found; this server serves {settings.model_id!r} "
                                           "(OpenAI's realtime and speech model names are taken as its aliases)",
                                      "model_not_found", "model")
        if refused is not None:
            await websocket.send_json(error_event(refused))
            await websocket.close(1013 if refused.status == 503 else 1008)
            return
        await RealtimeSession(websocket, state, model).run()

    app.add_middleware(Guard, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    if settings.cors_origins:  # outermost: a browser's preflight carries no API key
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])
    return app
