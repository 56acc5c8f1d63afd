"""The Wyoming tests' helpers: a server with HTTP and Wyoming on loopback ports in this process,
and the wyoming library's own `AsyncTcpClient`, every read bounded."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("wyoming", reason="the Wyoming tests need the test extra: pip install -e '.[test]'")

from mlx_qwen3tts.server.cli import bind  # noqa: E402
from mlx_qwen3tts.server.wyoming_listen import attach  # noqa: E402
from serving import LiveServer, decode  # noqa: E402
from wyoming.audio import AudioChunk  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.event import Event  # noqa: E402


class Wyoming:
    """The server's Wyoming port through `AsyncTcpClient`, every read bounded."""

    def __init__(self, port: int):
        self.client = AsyncTcpClient("127.0.0.1", port)

    async def __aenter__(self) -> Wyoming:
        await asyncio.wait_for(self.client.connect(), 10)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.disconnect()

    async def send(self, *events) -> None:
        for event in events:
            await self.client.write_event(event.event())

    async def next(self) -> Event:
        event = await asyncio.wait_for(self.client.read_event(), 60)
        assert event is not None, "the server closed the connection"
        return event

    async def until(self, kind: str) -> list[Event]:
        """Events up to and including the next of type `kind`."""
        events = [await self.next()]
        while events[-1].type != kind:
            events.append(await self.next())
        return events


def audio_of(events: list[Event]) -> np.ndarray:
    data = b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))
    return decode(data, "pcm")


def kinds(events: list[Event]) -> list[str]:
    """Event types in order, runs of audio-chunk folded into one."""
    out = []
    for e in events:
        if not (e.type == "audio-chunk" and out and out[-1] == "audio-chunk"):
            out.append(e.type)
    return out


def run(coro, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Served:
    """`with Served(tts, defaults) as s:` HTTP at `s.http.url` and Wyoming at `s.port`, one server."""

    def __init__(self, tts, defaults: dict, **settings):
        self.http = LiveServer(tts, **settings)
        self.wyoming = attach(self.http.app, bind("127.0.0.1", 0), defaults)
        self.port, self.state = self.wyoming.port, self.http.state

    def __enter__(self) -> Served:
        self.http.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.http.__exit__(*exc)
