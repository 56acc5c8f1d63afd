"""The ASGI layer in front of every route: the API key, body-size limits, and a log line for the
routes that do not log their own.

Pure ASGI (not Starlette's BaseHTTPMiddleware), so streamed responses pass straight through
and a client going away reaches the speech route as it happens.
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from .errors import APIError

logger = logging.getLogger("mlx_qwen3tts.server")

UPLOAD_PATH = "/v1/audio/voices"
UPLOAD_SLACK = 64 << 10  # the multipart envelope and its text fields, on top of the audio


class BodyTooLarge(APIError):
    def __init__(self, limit: int, what: str):
        super().__init__(413, f"the {what} is over the {_size(limit)} limit: send less", "body_too_large")


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n / 1024:g} KB"


class Guard:
    def __init__(self, app, api_key: str | None, max_body_bytes: int, max_upload_bytes: int):
        self.app, self.api_key = app, api_key
        self.max_body, self.max_upload = max_body_bytes, max_upload_bytes

    def _authorized(self, scope) -> APIError | None:
        if not self.api_key:
            return None
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = value.partition(" ")
        if not value:
            return APIError(401, "missing API key: send the header Authorization: Bearer <key>", "missing_api_key")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            return APIError(401, "invalid API key: send the server's key as Authorization: Bearer <key>",
                            "invalid_api_key")
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refused = self._authorized(scope)
        if scope["type"] == "websocket":
            if refused is not None:
                return await _deny_websocket(scope, send, refused)
            return await self.app(scope, receive, send)
        if refused is None:
            upload = scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH
            limit = self.max_upload + UPLOAD_SLACK if upload else self.max_body
            what, shown = ("upload", self.max_upload) if upload else ("request body", self.max_body)
            refused = _declared_too_large(scope, limit, shown, what)
        if refused is not None:
            await _send_json(send, refused, scope)
            return
        status, started = [0], time.perf_counter()

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                counted_receive.total += len(message.get("body", b""))
                if counted_receive.total > limit:
                    raise BodyTooLarge(shown, what)
            return message

        counted_receive.total = 0

        async def watched_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if scope["path"] != "/v1/audio/speech":  # speech logs its own line, with the audio's figures
            logger.info("%s %s %d %.3fs", scope["method"], scope["path"], status[0], time.perf_counter() - started)


def _declared_too_large(scope, limit: int, shown: int, what: str) -> APIError | None:
    length = dict(scope.get("headers") or []).get(b"content-length")
    try:
        return BodyTooLarge(shown, what) if length is not None and int(length) > limit else None
    except ValueError:
        return APIError(400, "Content-Length is not a number", "invalid_request")


async def _send_json(send, error: APIError, scope) -> None:
    body = json.dumps(error.body()).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
    logger.info("%s %s %d (%s)", scope.get("method", "WS"), scope["path"], error.status, error.code)


async def _deny_websocket(scope, send, error: APIError) -> None:
    """Refuses the handshake with the JSON error, or closes it (1008) where the server cannot."""
    logger.info("WS %s %d (%s)", scope["path"], error.status, error.code)
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps(error.body()).encode()
        await send({"type": "websocket.http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})
