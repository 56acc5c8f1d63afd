"""What real clients send, byte for byte as they send it (read from their source and taps), and
what they need back: Open WebUI (whole-body mp3, voices and models lists), wyoming-openai
(streamed wav with speed), LiveKit's plugin (mp3 in SSE deltas), pipecat (raw pcm)."""

from __future__ import annotations

import base64
import io
import json
import struct

import httpx
import numpy as np
import pytest
import soundfile as sf

from serving import LiveServer, decode
from serving import tts  # noqa: F401  (fixture)

TEXT = "Hello there. This is a test."
KEY = "sk-local"
# The one field added to each client's request: the random model would otherwise speak to its
# length budget (17 s here). Open WebUI sends it with AUDIO_TTS_OPENAI_PARAMS, the others as extra_body.
SHORT = {"max_new_tokens": 30}


@pytest.fixture(scope="module")
def server(tts):
    with LiveServer(tts, api_key=KEY) as live:
        yield live


def post(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/audio/speech", json={**body, **SHORT}, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"})


def samples_sent(server, response) -> int:
    """How many samples the server made for `response` (its own record, once it is logged)."""
    return round(server.record(response.headers["x-request-id"]).audio_seconds * 24000)


def test_open_webui(server):
    headers = {"Authorization": f"Bearer {KEY}"}
    r = post(server, {"input": TEXT, "voice": "alloy", "model": "tts-1"})  # its defaults, no response_format
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    audio, rate = sf.read(io.BytesIO(r.content))
    assert rate == 24000 and abs(len(audio) - samples_sent(server, r)) <= 2400  # LAME's delay and padding
    voices = httpx.get(f"{server.url}/v1/audio/voices", headers=headers).json()["voices"]
    assert {"alloy", "vivian"} <= {v["id"] for v in voices} and all(v["name"] for v in voices)
    models = httpx.get(f"{server.url}/v1/audio/models", headers=headers).json()["models"]
    assert models[0]["id"] == "tiny-tts"


def test_wyoming_openai_streamed_wav_with_speed(server):
    client = server.openai(api_key=KEY)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="shimmer", input=TEXT,
                                                            response_format="wav", speed=1.25,
                                                            extra_body=SHORT) as r:
        data = b"".join(r.iter_bytes(2048))
    riff, fmt, data_size = struct.unpack("<I", data[4:8])[0], data[20:36], struct.unpack("<I", data[40:44])[0]
    assert riff == data_size == 0xFFFFFFFF  # "unknown length", as it expects of a stream
    assert struct.unpack("<HHIIHH", fmt) == (1, 1, 24000, 48000, 2, 16)
    assert (len(data) - 44) // 2 == samples_sent(server, r)


def test_livekit_default_request(server):
    body = {"model": "gpt-4o-mini-tts", "input": TEXT, "voice": "ash", "response_format": "mp3", "speed": 1.0,
            "stream_format": "sse"}
    r = post(server, body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    mp3 = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    audio, rate = sf.read(io.BytesIO(mp3))
    assert rate == 24000 and abs(len(audio) - samples_sent(server, r)) <= 2400


def test_pipecat_default_request(server):
    r = post(server, {"model": "gpt-4o-mini-tts", "input": TEXT, "voice": "alloy", "response_format": "pcm"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
    assert len(decode(r.content, "pcm")) == samples_sent(server, r) and np.abs(decode(r.content, "pcm")).max() > 0
