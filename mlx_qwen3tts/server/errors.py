"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for every route.

Bad input raises `APIError` with a 4xx status and a message that says what to do; anything
unexpected becomes a 500 with the traceback in the log, and the server goes on serving.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    """A request the server refuses: HTTP status, message for the user, machine-readable code."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see GET /v1/models, POST /v1/audio/speech"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    code = _STATUS_CODES.get(exc.status_code, "invalid_request")
    return APIError(exc.status_code, detail, code, headers=getattr(exc, "headers", None)).response()


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return APIError(400, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request").response()


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error in %s %s", request.method, request.url.path)
    return APIError(500, f"internal error ({type(exc).__name__}); the server keeps running, see its log",
                    "internal_error").response()


def install(app: FastAPI) -> None:
    app.add_exception_handler(APIError, lambda request, exc: exc.response())
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
