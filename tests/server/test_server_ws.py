"""The live-text WebSocket on a real server, through the `websockets` client: pieces, flush, done
and cancel give the live-text API's audio; a session shares the model with HTTP requests."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from serving import LIVE, PCM16, TEXT, LiveServer, Socket, decode, live_feed, pieces, wait_for
from serving import server, tts  # noqa: F401  (fixtures)

pytest.importorskip("websockets")

SECOND = "And here is a second sentence, after the flush."
OPTIONS = dict(seed=3, max_new_tokens=12)
LONG = dict(seed=0, max_new_tokens=200)  # this text and seed run to the budget: about 2.8 s of work


def say_text(ws, until: str, **options) -> dict:
    """Configures the session (voice vivian, `options`), sends TEXT and a flush, and reads
    events up to the first `until`, which it returns."""
    ws.send("session.config", voice="vivian", **options)
    ws.send("input.text", text=TEXT)
    ws.send("input.flush")
    return ws.until(until)


def live_api(tts, ops, **options) -> dict[int, np.ndarray]:
    """What `tts.stream()` makes in process from the same writes and flushes: audio per utterance."""
    out: dict[int, list] = {}
    for chunk in tts.stream(live_feed(ops), speaker="vivian", **LIVE, **options):
        out.setdefault(chunk.utterance, []).append(chunk.samples)
    return {u: np.concatenate(parts) for u, parts in out.items()}


@pytest.mark.parametrize("fmt", ["pcm", "pcm_f32"])
def test_pieces_flush_and_done_give_the_live_text_apis_audio(server, tts, fmt):
    ops = pieces(TEXT) + [None] + pieces(SECOND)
    expected = live_api(tts, ops, **OPTIONS)
    with Socket(server) as ws:
        ws.send("session.config", voice="vivian", response_format=fmt, **OPTIONS)
        ready = ws.until("session.ready")
        assert ready["sample_rate"] == 24000 and ready["response_format"] == fmt and ready["voice"] == "vivian"
        for op in ops:
            ws.send("input.flush") if op is None else ws.send("input.text", text=op)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    kinds = [(e["type"], e.get("utterance")) for e in ws.events[1:]]
    assert kinds == [("audio.start", 0), ("audio.done", 0), ("audio.start", 1), ("audio.done", 1)]
    for utterance, done in ((0, ws.events[2]), (1, ws.events[4])):
        audio = ws.samples(utterance, fmt)
        assert len(audio) == len(expected[utterance]) == round(done["audio_seconds"] * 24000)
        np.testing.assert_allclose(audio, expected[utterance], atol=PCM16 if fmt == "pcm" else 1e-6)
        assert done["finish_reason"] in ("eos", "max_new_tokens")


def test_cancel_stops_the_utterance_and_the_session_goes_on(server, tts):
    with Socket(server) as ws:
        say_text(ws, "audio.start", **LONG)
        assert isinstance(ws.next(), bytes)
        ws.send("cancel")
        done = ws.until("audio.done")
        assert done["finish_reason"] == "cancelled" and done["audio_seconds"] < 199 * 0.08 / 2
        # After a cancel the session takes a new config and new text.
        ws.send("session.config", voice="eric", **OPTIONS)
        ws.until("session.ready")
        ws.send("input.text", text=SECOND)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    second = ws.events[-1]
    assert second["type"] == "audio.done" and second["utterance"] == 1
    expected = tts.generate(SECOND, speaker="eric", **LIVE, **OPTIONS).samples
    np.testing.assert_allclose(ws.samples(1), expected, atol=PCM16)


def test_a_client_that_goes_away_mid_speech_stops_its_generation(server):
    before = len(server.state.records)
    ws = Socket(server)
    say_text(ws, "audio.start", **LONG)
    ws.next()
    ws.close()  # mid-utterance
    wait_for(lambda: not server.state.scheduler.busy, 30, "the model to be free")
    (record,) = list(server.state.records)[before:]
    assert record.kind == "ws" and record.finish_reason == "client_gone" and record.frames < 199
    r = httpx.post(f"{server.url}/v1/audio/speech", timeout=60, json={
        "input": TEXT, "voice": "vivian", "response_format": "pcm", **OPTIONS})
    assert r.status_code == 200
    assert server.record(r.headers["x-request-id"]).ahead == 0  # it found the model free


def test_a_session_waiting_for_text_holds_nothing_once_it_leaves(server):
    ws = Socket(server)
    ws.send("input.text", text="Words that are never flushed")
    wait_for(lambda: server.state.scheduler.busy, 30, "the session to take the model")
    ws.close()
    wait_for(lambda: not server.state.scheduler.busy, 30, "the model to be free again")


def test_an_idle_session_gives_the_model_to_a_waiting_request(server, tts):
    with Socket(server) as ws:
        say_text(ws, "audio.done", **OPTIONS)
        assert server.state.scheduler.busy  # idle, alone: it keeps its stream (and its context)
        r = httpx.post(f"{server.url}/v1/audio/speech", timeout=60, json={
            "input": SECOND, "voice": "eric", "response_format": "pcm", **OPTIONS})
        assert r.status_code == 200 and server.record(r.headers["x-request-id"]).ahead == 1
        np.testing.assert_allclose(decode(r.content, "pcm"), tts.generate(SECOND, speaker="eric", **OPTIONS).samples,
                                   atol=PCM16)
        ws.send("input.text", text=SECOND)  # later text: a new stream, on a new turn
        ws.send("input.done")
        assert ws.until_closed() == 1000
    np.testing.assert_allclose(ws.samples(1), tts.generate(SECOND, speaker="vivian", **LIVE, **OPTIONS).samples,
                               atol=PCM16)


def test_a_session_stalled_mid_utterance_gives_way_after_its_idle_time(tts):
    with LiveServer(tts, ws_idle_seconds=0.3) as server, Socket(server) as ws:
        ws.send("session.config", voice="vivian", **OPTIONS)
        ws.send("input.text", text=TEXT)  # no flush, and then nothing: the text waits to be finished
        wait_for(lambda: server.state.scheduler.busy, 30, "the session to take the model")
        result = {}
        request = threading.Thread(target=lambda: result.update(r=httpx.post(
            f"{server.url}/v1/audio/speech", timeout=60,
            json={"input": SECOND, "voice": "eric", "response_format": "pcm", **OPTIONS})))
        request.start()
        done = ws.until("audio.done")  # what it had was spoken as an utterance, then it gave way
        request.join(60)
        assert result["r"].status_code == 200 and done["finish_reason"] in ("eos", "max_new_tokens")
        expected = tts.generate(TEXT, speaker="vivian", **LIVE, **OPTIONS).samples
        np.testing.assert_allclose(ws.samples(0), expected, atol=PCM16)


def test_text_layout_whole_puts_each_utterance_in_the_prompt_first(server, tts):
    with Socket(server) as ws:
        ws.send("session.config", voice="vivian", text_layout="whole", **OPTIONS)
        for piece in pieces(TEXT):
            ws.send("input.text", text=piece)
        ws.send("input.done")
        assert ws.until_closed() == 1000
    whole = tts.generate(TEXT, speaker="vivian", **OPTIONS).samples  # the library's default for CustomVoice
    np.testing.assert_allclose(ws.samples(0), whole, atol=PCM16)
    r = httpx.post(f"{server.url}/v1/audio/speech", timeout=60, json={
        "input": TEXT, "voice": "vivian", "response_format": "pcm", "text_layout": "streaming", **OPTIONS})
    streaming = tts.generate(TEXT, speaker="vivian", **LIVE, **OPTIONS).samples
    np.testing.assert_allclose(decode(r.content, "pcm"), streaming, atol=PCM16)
    assert not np.allclose(whole, streaming, atol=4 * PCM16)


def test_text_after_the_utterance_went_on_air_counts_to_it(server):
    # The first words are on air before the rest of the utterance arrives (no flush between).
    with Socket(server) as ws:
        ws.send("session.config", voice="vivian", **LONG)
        ws.send("input.text", text="Hello there,")
        ws.until("audio.start")
        ws.send("input.text", text=" and more words.")
        ws.send("input.done")
        done = ws.until("audio.done")
        assert ws.until_closed() == 1000
    assert done["utterance"] == 0 and not [e for e in ws.events if e.get("type") == "error"]
    record = [r for r in server.state.records if r.kind == "ws"][-1]  # logged before its audio.done
    assert record.chars == len("Hello there, and more words.")
