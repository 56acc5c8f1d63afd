"""Registered voices on a Base model: upload a recording (the openai client's `audio.voices.create`
or plain multipart), speak with it by name over HTTP and the WebSocket, delete it; uploads that
are not usable audio, or names that try to leave the folder, are refused and store nothing."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile as sf

import mlx_qwen3tts
from reference import requires_reference, write_speechlike_wav
from serving import TEXT, LiveServer, Socket, decode

pytestmark = [requires_reference]

REF_TEXT = "Hello, this is a short reference recording."
OPTIONS = dict(seed=4, max_new_tokens=8)
PCM16 = 1 / 32768 + 1e-6


@pytest.fixture(scope="module")
def tts(tiny_folder):
    return mlx_qwen3tts.load(tiny_folder("base"))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_speechlike_wav(tmp_path_factory.mktemp("ref") / "ref.wav", seconds=2.3)


@pytest.fixture(scope="module")
def server(tts, tmp_path_factory):
    with LiveServer(tts, voices_dir=tmp_path_factory.mktemp("voices"), max_upload_bytes=1 << 20) as live:
        yield live


def upload(server, data: bytes, name="me", transcript=None, filename="ref.wav") -> httpx.Response:
    fields = {"name": name} if name is not None else {}
    if transcript is not None:
        fields["transcript"] = transcript
    return httpx.post(f"{server.url}/v1/audio/voices", data=fields, timeout=60,
                      files={"audio_sample": (filename, data, "audio/wav")})


def speak(server, voice: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/audio/speech", timeout=60, json={
        "model": "tts-1", "input": TEXT, "voice": voice, "response_format": "pcm", **OPTIONS})


def test_register_speak_and_delete_a_voice(server, tts, recording):
    r = upload(server, recording.read_bytes(), name="me", transcript=REF_TEXT)
    assert r.status_code == 201, r.text
    assert r.json() | {"created_at": 0} == {"id": "me", "name": "me", "object": "audio.voice", "type": "audio_sample",
                                            "created_at": 0, "in_context": True}
    assert (server.state.settings.voices_dir / "me.safetensors").is_file()
    listed = httpx.get(f"{server.url}/v1/audio/voices").json()["data"]
    assert [(v["id"], v["type"]) for v in listed] == [("me", "audio_sample")]
    expected = tts.generate(TEXT, voice=tts.clone_voice(recording, REF_TEXT), **OPTIONS).samples
    spoken = speak(server, "me")
    assert spoken.status_code == 200
    np.testing.assert_allclose(decode(spoken.content, "pcm"), expected, atol=PCM16)
    with Socket(server) as ws:  # the WebSocket takes it by name too
        ws.send("session.config", voice="me", **OPTIONS)
        ws.send("input.text", text=TEXT)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    np.testing.assert_allclose(ws.samples(0), expected, atol=PCM16)
    deleted = httpx.delete(f"{server.url}/v1/audio/voices/me")
    assert deleted.json() == {"id": "me", "deleted": True, "object": "audio.voice.deleted"}
    gone = speak(server, "me")
    assert gone.status_code == 400 and "no voices are registered yet" in gone.json()["error"]["message"]
    assert httpx.delete(f"{server.url}/v1/audio/voices/me").status_code == 404


def test_the_openai_client_registers_a_voice_under_an_openai_name(server, tts, recording):
    client = server.openai()
    if not hasattr(client.audio, "voices"):
        pytest.skip("this openai client predates audio.voices")
    voice = client.audio.voices.create(audio_sample=recording.open("rb"), name="alloy", consent="unused")
    assert voice.id == "alloy" and voice.type == "audio_sample"
    expected = tts.generate(TEXT, voice=tts.clone_voice(recording, x_vector_only=True), **OPTIONS).samples
    body = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="pcm",
                                      extra_body=OPTIONS).content  # an app written for OpenAI, as it is
    np.testing.assert_allclose(decode(body, "pcm"), expected, atol=PCM16)
    assert client.audio.voices.delete("alloy").deleted


def _wav(seconds: float, silent: bool = False) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    out = io.BytesIO()
    sf.write(out, np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 220 * t), 16000, format="WAV")
    return out.getvalue()


BAD_UPLOADS = [
    ("not audio", b"this is a text file, not a recording\n" * 40, "me", 400, "invalid_audio",
     "the upload is not audio this server can read (send WAV, FLAC, OGG or MP3)"),
    ("too short", _wav(0.5), "me", 400, "invalid_audio", "reference audio is 0.50 s long; at least 1 s is needed"),
    ("silent", _wav(2.0, silent=True), "me", 400, "invalid_audio", "is silent (all samples are zero)"),
    ("a name with ../", _wav(2.0), "../evil", 400, "invalid_voice_name", "invalid voice name '../evil': use 1 to 64"),
    ("a name with a slash", _wav(2.0), "a/b", 400, "invalid_voice_name", "invalid voice name 'a/b'"),
    ("no name", _wav(2.0), None, 400, "invalid_voice_name", "a voice name is required (the form field name)"),
    ("over the upload limit", b"\0" * (2 << 20), "me", 413, "body_too_large", "the upload is over the 1 MB limit"),
]


@pytest.mark.parametrize("what, data, name, status, code, words", BAD_UPLOADS, ids=[row[0] for row in BAD_UPLOADS])
def test_bad_uploads_are_refused_and_store_nothing(server, what, data, name, status, code, words):
    r = upload(server, data, name=name)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert list(server.state.settings.voices_dir.iterdir()) == []


def test_other_refusals(server, recording):
    r = httpx.post(f"{server.url}/v1/audio/voices", json={"name": "me"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"
    r = httpx.post(f"{server.url}/v1/audio/voices", data={"name": "me"}, files={"other": ("x", b"x")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_audio"
    assert upload(server, recording.read_bytes(), name="twice").status_code == 201
    again = upload(server, recording.read_bytes(), name="twice")
    assert again.status_code == 409 and "exists already" in again.json()["error"]["message"]
    r = httpx.delete(f"{server.url}/v1/audio/voices/bad.name")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_voice_name"
    r = httpx.delete(f"{server.url}/v1/audio/voices/..%2Ftwice")  # decoded, it is no route at all
    assert r.status_code == 404 and (server.state.settings.voices_dir / "twice.safetensors").is_file()
    r = httpx.post(f"{server.url}/v1/audio/speech", json={"input": TEXT, "voice": "twice", "instructions": "Loud."})
    assert r.status_code == 400 and "Base (voice clone) models take no instructions" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/audio/speech", json={"input": TEXT})
    assert r.status_code == 400 and "voice is required: the name of a registered voice" in r.json()["error"]["message"]
    assert httpx.delete(f"{server.url}/v1/audio/voices/twice").status_code == 200
