"""OpenAI's speech API on a real server, through the official `openai` client: every format is
one stream equal to (lossless) or close to (lossy) `tts.generate()` for the same seed, its
first bytes sent while the rest is still being generated; SSE; models, voices and health."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf

import mlx_qwen3tts
from serving import TEXT, LiveServer, aligned_correlation, decode, speaking_checkpoint
from serving import server, tts  # noqa: F401  (fixtures)

pytest.importorskip("openai")

ARGS = dict(seed=7, max_new_tokens=16)  # 15 frames: chunks of 1, 2, 4 and 8
PCM16 = 1 / 32768 + 1e-6  # one step of 16-bit PCM


@pytest.fixture(scope="module")
def reference(tts):
    return tts.generate(TEXT, speaker="vivian", **ARGS)


def speak(server, fmt: str):
    """Streams one request through the openai client: (body, the server's record of it, content type)."""
    with server.openai().audio.speech.with_streaming_response.create(
            model="tts-1", voice="vivian", input=TEXT, response_format=fmt, extra_body=ARGS) as r:
        assert r.status_code == 200
        data = b"".join(r.iter_bytes())
        request_id, media = r.headers["x-request-id"], r.headers["content-type"]
    return data, server.record(request_id), media


@pytest.mark.parametrize("fmt, media, magic", [("pcm", "audio/pcm", None), ("wav", "audio/wav", b"RIFF"),
                                               ("flac", "audio/flac", b"fLaC")])
def test_lossless_formats_equal_generate(server, reference, fmt, media, magic):
    data, record, content_type = speak(server, fmt)
    assert content_type == media
    audio = decode(data, fmt)
    assert len(audio) == len(reference.samples) == 15 * 1920
    np.testing.assert_allclose(audio, reference.samples, atol=PCM16)
    if magic:  # one container for the whole response, never one per chunk
        assert data.startswith(magic) and data.count(magic) == 1
    # The first bytes went out when one frame of the fifteen had been generated (FLAC: at the end).
    assert record.frames_at_first_byte == (15 if fmt == "flac" else 1) and record.frames == 15
    assert record.finish_reason == "max_new_tokens" and record.audio_seconds == pytest.approx(1.2)


@pytest.mark.parametrize("fmt, media", [("mp3", "audio/mpeg"), ("opus", "audio/ogg; codecs=opus")])
def test_lossy_formats_are_one_continuous_stream_close_to_generate(server, reference, fmt, media):
    data, record, content_type = speak(server, fmt)
    assert content_type == media
    audio, n = decode(data, fmt), len(reference.samples)
    if fmt == "opus":
        assert data.startswith(b"OggS") and data.count(b"OpusHead") == 1
        assert len(audio) == n  # Ogg Opus trims its own pre-skip and padding
    else:
        assert data[:2] == b"\xff\xf3"  # an MPEG-2 Layer III frame, no tag frame before it
        assert n <= len(audio) <= n + 2400  # plus the encoder delay and the last frame's padding
    # One delay for the whole clip, the codec's own (LAME's 1105 samples; Opus trims its own):
    # chunks encoded apart would each add theirs. The tiny model's audio is quiet hiss, which a
    # 64 kb/s codec keeps only roughly; every part of it lines up at that one delay.
    lag, corr = aligned_correlation(reference.samples, audio)
    assert lag == (0 if fmt == "opus" else 1105) and corr > 0.75, (lag, corr)
    for part in np.array_split(np.arange(n), 4):
        assert np.corrcoef(reference.samples[part], audio[part + lag])[0, 1] > 0.6
    assert record.frames_at_first_byte < record.frames == 15


def test_the_plain_openai_call_and_aliases(server, reference):
    client = server.openai()
    for model in ("tiny-tts", "gpt-4o-mini-tts", "tts-1-hd"):
        body = client.audio.speech.create(model=model, voice={"id": "vivian"}, input=TEXT, response_format="pcm",
                                          extra_body=ARGS).content
        np.testing.assert_allclose(decode(body, "pcm"), reference.samples, atol=PCM16)


def test_instructions_and_language_reach_the_model(server, tts):
    instruct = "Speak slowly and warmly."
    expected = tts.generate(TEXT, speaker="eric", instruct=instruct, language="english", **ARGS).samples
    body = server.openai().audio.speech.create(model="tts-1", voice="Eric", input=TEXT, instructions=instruct,
                                               response_format="pcm", extra_body={"language": "English", **ARGS})
    np.testing.assert_allclose(decode(body.content, "pcm"), expected, atol=PCM16)
    plain = tts.generate(TEXT, speaker="eric", **ARGS).samples
    assert not np.allclose(expected, plain, atol=4 * PCM16)  # the instruction and language made a difference


def test_sse_deltas_decode_to_the_same_audio(server, reference):
    client = server.openai()
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="vivian", input=TEXT, response_format="pcm", stream_format="sse",
            extra_body=ARGS) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = list(r.iter_lines())
    events = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert names == [e["type"] for e in events]
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"} and len(events) > 2
    assert events[-1]["type"] == "speech.audio.done"
    usage = events[-1]["usage"]
    assert usage["output_tokens"] == 15 and usage["total_tokens"] == usage["input_tokens"] + 15
    audio = decode(b"".join(base64.b64decode(e["audio"]) for e in events[:-1]), "pcm")
    np.testing.assert_allclose(audio, reference.samples, atol=PCM16)


def test_sse_with_wav_carries_one_header(server, reference):
    r = httpx.post(f"{server.url}/v1/audio/speech", timeout=60, json={
        "input": TEXT, "voice": "vivian", "response_format": "wav", "stream_format": "sse", **ARGS})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    data = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert data.count(b"RIFF") == 1
    np.testing.assert_allclose(decode(data, "wav"), reference.samples, atol=PCM16)


def test_models_voices_and_health(server, tts):
    client = server.openai()
    (model,) = client.models.list().data
    assert model.id == "tiny-tts" and model.model_extra["kind"] == "custom_voice"
    voices = httpx.get(f"{server.url}/v1/audio/voices").json()["data"]
    assert [(v["id"], v["type"]) for v in voices if v["type"] != "alias"] == [(name, "preset") for name in tts.speakers]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["busy"] is False and health["waiting"] == 0


def test_voice_design_takes_its_voice_from_instructions(tmp_path):
    tts = mlx_qwen3tts.load(speaking_checkpoint(tmp_path / "vd", kind="voice_design", seed=6))
    instruct = "A calm, low voice."
    reference = tts.generate(TEXT, instruct=instruct, **ARGS)
    with LiveServer(tts) as server:
        body = server.openai().audio.speech.create(model="tts-1", voice="alloy", input=TEXT, instructions=instruct,
                                                   response_format="pcm", extra_body=ARGS).content
    np.testing.assert_allclose(decode(body, "pcm"), reference.samples, atol=PCM16)


def test_flac_reads_with_soundfile_and_equals_wav(server):
    client = server.openai()
    bodies = {fmt: client.audio.speech.create(model="tts-1", voice="vivian", input=TEXT, response_format=fmt,
                                              extra_body=ARGS).content for fmt in ("flac", "wav")}
    flac, rate = sf.read(io.BytesIO(bodies["flac"]), dtype="int16")
    wav = np.frombuffer(bodies["wav"][44:], "<i2")
    assert rate == 24000 and len(flac) == 15 * 1920 and np.array_equal(flac, wav)


def test_aac_through_the_openai_client(server, reference):
    av = pytest.importorskip("av")
    data, record, media = speak(server, "aac")
    assert media == "audio/aac" and data[:2] == b"\xff\xf1" and record.frames_at_first_byte < 15
    with av.open(io.BytesIO(data)) as container:
        audio = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    lag, corr = aligned_correlation(reference.samples, audio)
    assert lag == 1024 and corr > 0.75, (lag, corr)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_sse_deltas_of_every_format_make_one_file(server, reference, fmt):
    if fmt == "aac":
        pytest.importorskip("av")
    with server.openai().audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="vivian", input=TEXT, response_format=fmt, stream_format="sse",
            extra_body=ARGS) as r:
        lines = list(r.iter_lines())
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    data = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    direct, _, _ = speak(server, fmt)
    if fmt == "opus":  # each Ogg stream has a random serial number: the same audio, then
        assert data.count(b"OpusHead") == 1
        np.testing.assert_array_equal(decode(data, fmt), decode(direct, fmt))
    else:
        assert data == direct  # the same one stream, cut into deltas

