"""Bad requests, each with its status, its code and the words of its message, in OpenAI's error
shape; the API key on every route and on the WebSocket; and the server still answers right
after all of them."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

import mlx_qwen3tts
from serving import TEXT, LiveServer, Socket, decode, speaking_checkpoint
from serving import server, tts  # noqa: F401  (fixtures)

pytest.importorskip("websockets")

GOOD = {"model": "tts-1", "input": TEXT, "voice": "vivian", "response_format": "pcm", "seed": 1, "max_new_tokens": 5}

# (what, body: a dict merged over GOOD, or raw bytes, status, code, words in the message)
BAD_REQUESTS = [
    ("malformed JSON", b'{"input": "hi",', 400, "invalid_json", "the body is not valid JSON"),
    ("a JSON array", b"[1, 2]", 400, "invalid_json", "must be a JSON object, not list"),
    ("no input", {"input": None}, 400, "missing_input", "input is required: the text to speak"),
    ("empty input", {"input": ""}, 400, "empty_input", "input is empty: give the words to speak"),
    ("only punctuation", {"input": "?! ..."}, 400, "empty_input", "input is empty: it has no letters or digits"),
    ("input not a string", {"input": 42}, 400, "invalid_value", "input must be a string"),
    ("input over the limit", {"input": "a" * 4097}, 400, "input_too_long", "4097 characters; the limit is 4096"),
    ("unknown voice", {"voice": "nobody"}, 400, "voice_not_found",
     "unknown voice 'nobody'; this model's voices are: eric, vivian"),
    ("no voice", {"voice": None}, 400, "missing_voice", "voice is required: one of eric, vivian"),
    ("a voice that is a path", {"voice": "../../etc/passwd"}, 400, "voice_not_found", "unknown voice '../../etc/passwd'"),
    ("unsupported format", {"response_format": "m4a"}, 400, "unsupported_format",
     'unsupported response_format "m4a"; choose one of: mp3, opus, aac, flac, wav, pcm'),
    ("speed 0.1", {"speed": 0.1}, 400, "invalid_value",
     "speed must be a number from 0.25 to 4.0, got 0.1"),
    ("speed as a word", {"speed": "fast"}, 400, "invalid_value", 'speed must be a number from 0.25 to 4.0'),
    ("unknown stream_format", {"stream_format": "chunks"}, 400, "unsupported_stream_format", "choose audio or sse"),
    ("unknown model", {"model": "gpt-5"}, 404, "model_not_found", "model 'gpt-5' not found; this server serves 'tiny-tts'"),
    ("unknown language", {"language": "klingon"}, 400, "invalid_value",
     "unknown language 'klingon'; choose one of: auto, chinese, english"),
    ("seed as a string", {"seed": "7"}, 400, "invalid_value", 'seed must be an integer from 0 to 2147483647, got "7"'),
    ("negative temperature", {"temperature": -1}, 400, "invalid_value", "temperature must be a number from 0"),
    ("top_p of 0", {"top_p": 0}, 400, "invalid_value", "top_p must be a number above 0 and at most 1"),
    ("unknown text_layout", {"text_layout": "poem"}, 400, "invalid_value", 'unsupported text_layout "poem"; choose streaming'),
    ("max_new_tokens of 0", {"max_new_tokens": 0}, 400, "invalid_value", "max_new_tokens must be an integer from 1 to 8192"),
    ("a 2 MB body", {"input": "a" * (2 << 20)}, 413, "body_too_large", "the request body is over the 1 MB limit"),
]


def check_error(response: httpx.Response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and words in error["message"], error
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")


@pytest.mark.parametrize("what, body, status, code, words", BAD_REQUESTS, ids=[row[0] for row in BAD_REQUESTS])
def test_bad_speech_requests(server, what, body, status, code, words):
    content = body if isinstance(body, bytes) else json.dumps({k: v for k, v in {**GOOD, **body}.items()
                                                               if v is not None}).encode()
    r = httpx.post(f"{server.url}/v1/audio/speech", content=content, timeout=60,
                   headers={"content-type": "application/json"})
    check_error(r, status, code, words)


@pytest.mark.parametrize("method, path, status, code, words", [
    ("GET", "/v1/audio/speech", 405, "method_not_allowed", "GET is not allowed on /v1/audio/speech"),
    ("GET", "/v1/nothing", 404, "not_found", "no route GET /v1/nothing"),
    ("DELETE", "/v1/audio/voices/nobody", 400, "voices_disabled", "start it with --voices DIR"),
    ("POST", "/v1/audio/voices", 400, "voice_upload_not_supported",
     "voice upload needs a Base model; this server runs a custom_voice model"),
])
def test_bad_routes(server, method, path, status, code, words):
    files = {"audio_sample": ("a.wav", b"RIFF....", "audio/wav")} if method == "POST" else None
    r = httpx.request(method, f"{server.url}{path}", files=files, data={"name": "me"} if files else None)
    check_error(r, status, code, words)


def test_instructions_on_a_model_without_them(tmp_path):
    tts = mlx_qwen3tts.load(speaking_checkpoint(tmp_path / "cv06", size="0b6"))
    with LiveServer(tts) as server:
        r = httpx.post(f"{server.url}/v1/audio/speech", json={**GOOD, "instructions": "Whisper."}, timeout=60)
        check_error(r, 400, "instructions_not_supported", "this 0.6B CustomVoice model takes no instructions")
        assert httpx.post(f"{server.url}/v1/audio/speech", json=GOOD, timeout=60).status_code == 200


@pytest.mark.parametrize("message, code, words", [
    (b"\x00\x01binary", "binary_not_accepted", "binary frames are not accepted: send JSON text messages"),
    ("not json", "invalid_json", "a message is not valid JSON"),
    ('["input.text"]', "unknown_message_type", "unknown message type a JSON list; send one of: session.config"),
    ('{"type": "speak"}', "unknown_message_type", 'unknown message type "speak"; send one of'),
    ('{"type": "input.text", "text": 5}', "invalid_value", 'input.text needs "text": a string'),
    ('{"type": "session.config", "response_format": "mp3"}', "unsupported_format", "choose one of: pcm, pcm_f32"),
    ('{"type": "session.config", "voice": "nobody"}', "voice_not_found", "this model's voices are: eric, vivian"),
    ('{"type": "session.config", "model": "gpt-5"}', "model_not_found", "this server serves 'tiny-tts'"),
    (json.dumps({"type": "input.text", "text": "a" * 4097}), "input_too_long",
     "an utterance is at most 4096 characters: send input.flush between sentences"),
])
def test_bad_websocket_messages_get_an_error_and_the_session_goes_on(server, tts, message, code, words):
    with Socket(server) as ws:
        ws.ws.send(message)
        error = ws.until("error")
        assert error["code"] == code and words in error["message"], error
        ws.send("session.config", voice="eric", seed=2, max_new_tokens=5)
        ws.send("input.text", text=TEXT)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    expected = tts.generate(TEXT, speaker="eric", seed=2, max_new_tokens=5, non_streaming_mode=False).samples
    np.testing.assert_allclose(ws.samples(0), expected, atol=1 / 32768 + 1e-6)


def test_the_api_key_guards_every_route_and_the_websocket(tts):
    from websockets.exceptions import InvalidStatus

    key = "s3cret-key"
    with LiveServer(tts, api_key=key) as server:
        for method, path in (("POST", "/v1/audio/speech"), ("GET", "/v1/models"), ("GET", "/v1/audio/voices"),
                             ("GET", "/health"), ("DELETE", "/v1/audio/voices/x"), ("GET", "/nothing")):
            check_error(httpx.request(method, f"{server.url}{path}"), 401, "missing_api_key",
                        "missing API key: send the header Authorization: Bearer <key>")
            check_error(httpx.request(method, f"{server.url}{path}", headers={"Authorization": "Bearer wrong"}),
                        401, "invalid_api_key", "invalid API key")
        for api_key in (None, "wrong"):
            with pytest.raises(InvalidStatus) as refused:
                Socket(server, api_key=api_key)
            assert refused.value.response.status_code == 401
            assert json.loads(refused.value.response.body)["error"]["code"].endswith("api_key")
        body = server.openai(api_key=key).audio.speech.create(model="tts-1", voice="vivian", input=TEXT,
                                                              response_format="pcm", extra_body={"seed": 1,
                                                                                                 "max_new_tokens": 5})
        assert len(decode(body.content, "pcm")) == 4 * 1920
        with Socket(server, api_key=key) as ws:
            ws.send("input.text", text=TEXT)
            ws.send("input.done")
            assert ws.until_closed() == 1000 and ws.events[-1]["type"] == "audio.done"


def test_no_cors_unless_asked_for(server, tts):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    refused = httpx.options(f"{server.url}/v1/audio/speech", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    plain = httpx.get(f"{server.url}/health", headers={"Origin": "https://app.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    with LiveServer(tts, cors_origins=("https://app.example",), api_key="k") as allowed:
        ok = httpx.options(f"{allowed.url}/v1/audio/speech", headers=preflight)  # a preflight carries no key
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(f"{allowed.url}/v1/audio/speech", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_the_server_still_answers_right_after_all_of_them(server, tts):
    r = httpx.post(f"{server.url}/v1/audio/speech", json=GOOD, timeout=60)
    assert r.status_code == 200
    expected = tts.generate(TEXT, speaker="vivian", seed=1, max_new_tokens=5).samples
    np.testing.assert_allclose(decode(r.content, "pcm"), expected, atol=1 / 32768 + 1e-6)
    assert not [rec for rec in server.state.records if "internal_error" in rec.finish_reason]
