"""`speed` over HTTP and the WebSocket: the audio streams from the first frame as at speed 1,
and is 1/speed as long."""

from __future__ import annotations

import pytest

from serving import TEXT, Socket, decode
from serving import server, tts  # noqa: F401  (fixtures)

pytest.importorskip("pylibrb", reason="speed needs the speed extra (pylibrb has no wheel for this platform)")

ARGS = dict(seed=7, max_new_tokens=16)  # 15 frames


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_http_speed_streams_and_scales_the_length(server, speed):
    with server.openai().audio.speech.with_streaming_response.create(
            model="tts-1", voice="vivian", input=TEXT, response_format="pcm", speed=speed, extra_body=ARGS) as r:
        data = b"".join(r.iter_bytes())
        record = server.record(r.headers["x-request-id"])
    assert len(decode(data, "pcm")) == round(15 * 1920 / speed)
    assert record.frames_at_first_byte == 1 and record.frames == 15  # out after the first frame, as at speed 1


def test_websocket_speed(server):
    with Socket(server) as ws:
        ws.send("session.config", voice="eric", speed=1.5, **ARGS)
        ws.send("input.text", text=TEXT)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    assert len(ws.samples(0)) == round(15 * 1920 / 1.5)
    done = next(e for e in ws.events if e["type"] == "audio.done")
    assert done["audio_seconds"] == pytest.approx(1.2 / 1.5, abs=1e-3)
