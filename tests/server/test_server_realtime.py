"""OpenAI's Realtime API for speech at `WS /v1/realtime`: the openai SDK's own realtime client,
and Open WebUI's exact sequence (as its `openai-realtime` engine sends it) with an API key;
cancel, errors as `error` events, and instructions that never fail a session."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import mlx_qwen3tts
from serving import TEXT, LiveServer, decode, speaking_checkpoint
from serving import server, tts  # noqa: F401  (fixtures)

pytest.importorskip("websockets")

ARGS = dict(seed=7, max_new_tokens=16)  # 15 frames
PCM16 = 1 / 32768 + 1e-6


def message(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def collect(events) -> tuple[list[dict], bytes]:
    """Server events up to response.done, and the audio of its deltas."""
    seen, audio = [], b""
    for event in events:
        seen.append(event)
        if event["type"] == "error" and not any(e["type"] == "response.created" for e in seen):
            raise AssertionError(f"the response was refused: {event['error']}")  # no response.done would come
        if event["type"] == "response.output_audio.delta":
            audio += base64.b64decode(event["delta"])
        if event["type"] == "response.done":
            return seen, audio
    raise AssertionError("the connection ended before response.done")


def test_the_openai_sdk_realtime_client(server, tts):
    expected = tts.generate(TEXT, speaker="vivian", non_streaming_mode=False, **ARGS).samples
    client = server.openai()
    with client.realtime.connect(model="gpt-realtime") as connection:
        assert connection.recv().type == "session.created"
        connection.session.update(session={
            "type": "realtime", "output_modalities": ["audio"], "instructions": "You are a helpful assistant.",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "nova"}}, **ARGS})
        updated = connection.recv()
        assert updated.type == "session.updated" and updated.session.audio.output.voice == "nova"
        connection.response.create(response={"conversation": "none", "output_modalities": ["audio"],
                                             "input": [message(TEXT)]})
        events, audio = collect(e.model_dump() for e in connection)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_audio.done", "response.content_part.done", "response.output_item.done",
                          "response.done"]
    assert set(kinds[3:-4]) == {"response.output_audio.delta"}
    assert events[-1]["response"]["status"] == "completed"
    # nova is vivian's alias; the instructions went to this 1.7B model as its voice instruction.
    with_instruct = tts.generate(TEXT, speaker="vivian", non_streaming_mode=False,
                                 instruct="You are a helpful assistant.", **ARGS).samples
    np.testing.assert_allclose(decode(audio, "pcm"), with_instruct, atol=PCM16)
    assert not np.allclose(with_instruct, expected, atol=4 * PCM16)


def test_open_webui_sequence_with_an_api_key(tts):
    from websockets.sync.client import connect

    expected = tts.generate(TEXT, speaker="eric", non_streaming_mode=False, **ARGS).samples
    with LiveServer(tts, api_key="sk-local") as live:
        url = f"ws://127.0.0.1:{live.port}/v1/realtime?model=tiny-tts"
        with pytest.raises(Exception, match="401"):
            connect(url, open_timeout=30).close()
        with connect(url, additional_headers={"Authorization": "Bearer sk-local"}, open_timeout=30) as ws:
            def events():
                while True:
                    yield json.loads(ws.recv(timeout=60))

            stream = events()
            assert next(stream)["type"] == "session.created"
            ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "output_modalities": ["audio"], "instructions": "",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "eric"}}, **ARGS}}))
            assert next(stream)["type"] == "session.updated"
            # conversation.item.create, then response.create: the second way in
            ws.send(json.dumps({"type": "conversation.item.create", "item": message(TEXT)}))
            assert next(stream)["type"] == "conversation.item.created"
            ws.send(json.dumps({"type": "response.create", "response": {"conversation": "none"}}))
            done_events, audio = collect(stream)
    assert done_events[-1]["response"]["status"] == "completed"
    np.testing.assert_allclose(decode(audio, "pcm"), expected, atol=PCM16)


def test_cancel_and_errors_keep_the_session(server):
    with server.openai().realtime.connect(model="tts-1") as connection:
        assert connection.recv().type == "session.created"
        connection.send({"type": "input_audio_buffer.append", "audio": ""})
        error = connection.recv()
        assert error.type == "error" and "audio input is not taken" in error.error.message
        connection.send({"type": "session.update", "session": {"audio": {"output": {"voice": "nobody"}}}})
        error = connection.recv()
        assert error.type == "error" and error.error.code == "voice_not_found"
        connection.response.create(response={"input": [message("...")]})
        assert connection.recv().error.code == "empty_input"
        connection.session.update(session={"type": "realtime", "audio": {"output": {"voice": "ash"}},
                                           "max_new_tokens": 400, "seed": 1})
        assert connection.recv().type == "session.updated"
        connection.response.create(response={"input": [message(TEXT * 4)]})
        for event in connection:
            if event.type == "response.output_audio.delta":
                connection.response.cancel()
                break
        events, _ = collect(e.model_dump() for e in connection)
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"


def test_instructions_are_never_an_error(tmp_path):
    tts = mlx_qwen3tts.load(speaking_checkpoint(tmp_path / "cv06", size="0b6", seed=3))
    assert not tts.config.supports_instruct
    expected = tts.generate(TEXT, speaker="eric", non_streaming_mode=False, **ARGS).samples
    with LiveServer(tts) as live:
        with live.openai().realtime.connect(model="tiny-tts") as connection:
            connection.recv()
            connection.session.update(session={"type": "realtime", "instructions": "Be brief and friendly.",
                                               "audio": {"output": {"voice": "eric"}}, **ARGS})
            assert connection.recv().type == "session.updated"
            connection.response.create(response={"input": [message(TEXT)]})
            events, audio = collect(e.model_dump() for e in connection)
    assert events[-1]["response"]["status"] == "completed"
    np.testing.assert_allclose(decode(audio, "pcm"), expected, atol=PCM16)


def test_unknown_model_is_refused_with_an_error_event(server):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/v1/realtime?model=whisper-1", open_timeout=30) as ws:
        event = json.loads(ws.recv(timeout=30))
    assert event["type"] == "error" and event["error"]["code"] == "model_not_found"


def test_events_of_the_wrong_shape_are_error_events(server):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/v1/realtime", open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "session.created"
        for bad in ('{"type": "session.update", "session": {"audio": {"output": "loud"}}}', "not json", "[1]",
                    '{"type": "response.create", "response": {"input": "hi"}}',
                    '{"type": "conversation.item.create", "item": {"type": "message", "content": [{"type": '
                    '"input_audio"}]}}'):
            ws.send(bad)
            event = json.loads(ws.recv(timeout=30))
            assert event["type"] == "error" and event["error"]["message"], bad
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"output": {"voice": "alloy"}}}}))
        assert json.loads(ws.recv(timeout=30))["type"] == "session.updated"  # the session went on
