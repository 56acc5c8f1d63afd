"""The Wyoming server beside the HTTP one: `serve --wyoming tcp://HOST:PORT`.

It runs on the HTTP server's event loop (started and stopped with the app's lifespan), so its
replies share the one loaded model, its scheduler and its voices with every HTTP request.
The Wyoming protocol has no authentication: an address beyond loopback needs --allow-no-auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from .cli import bind, is_loopback
from .state import ServerState
from .wyoming_session import WyomingSession

logger = logging.getLogger("mlx_qwen3tts.server")

EXAMPLE = "tcp://0.0.0.0:10200"


def parse_uri(uri: str) -> tuple[str, int]:
    """`tcp://HOST:PORT` -> (host, port); a ValueError that shows the form otherwise."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(f"--wyoming takes tcp://HOST:PORT (e.g. {EXAMPLE}), not {uri!r}")
    return parts.hostname, port


def listen(uri: str, allow_no_auth: bool) -> socket.socket:
    """The Wyoming listening socket for `uri`; a ValueError that says what to do when it cannot be."""
    host, port = parse_uri(uri)
    if not is_loopback(host):
        if not allow_no_auth:
            raise ValueError(f"the Wyoming protocol has no authentication: on {host} anyone who can reach port "
                             f"{port} can use this server; pass --allow-no-auth to listen there anyway (Home "
                             f"Assistant on another machine needs it), or use tcp://127.0.0.1:{port}")
        logger.warning("Wyoming on %s:%d has no authentication: anyone who can reach it can use the model", host, port)
    try:
        return bind(host, port)
    except OSError as e:
        raise ValueError(f"cannot listen on {uri}: {e.strerror}") from None


class WyomingServer:
    """Wyoming connections on `sock`, served with `state` (the HTTP server's); `defaults` are
    stream options under every request's (a fixed seed, a frame budget)."""

    def __init__(self, state: ServerState, sock: socket.socket, defaults: dict | None = None):
        self.state, self.sock, self.defaults = state, sock, defaults
        self.port = sock.getsockname()[1]
        self._server: asyncio.AbstractServer | None = None
        self._sessions: dict[asyncio.Task, WyomingSession] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, sock=self.sock)
        host, port = self.sock.getsockname()[:2]
        logger.info("Wyoming on tcp://%s:%d", f"[{host}]" if ":" in host else host, port)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = WyomingSession(reader, writer, self.state, self.defaults)
        task = asyncio.current_task()
        self._sessions[task] = session
        try:
            await session.run()
        except ConnectionError as e:  # the client went mid-write: the session has stopped its replies
            logger.debug("wyoming client gone: %s", e)
        except Exception:
            logger.exception("wyoming connection failed")
        finally:
            self._sessions.pop(task, None)

    async def stop(self) -> None:
        """Stops listening and ends every connection (their generations stop within a frame)."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            await session.stop()
        tasks = list(self._sessions)
        if tasks:
            await asyncio.wait(tasks, timeout=10)


def attach(app, sock: socket.socket, defaults: dict | None = None) -> WyomingServer:
    """Serves Wyoming on `sock` for as long as `app` (from `create_app`) runs, on its event loop."""
    server = WyomingServer(app.state.server, sock, defaults)
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_):
        async with outer(app_) as state:
            await server.start()
            try:
                yield state
            finally:
                await server.stop()

    app.router.lifespan_context = lifespan
    return server
