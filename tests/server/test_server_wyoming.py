"""`serve --wyoming`: a real server (HTTP and Wyoming in one event loop) on a tiny model, driven by
the wyoming library's own `AsyncTcpClient` over loopback: describe, synthesize, text streamed in
pieces into one reply, Home Assistant's extra `synthesize`, errors, and a client that leaves."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

pytest.importorskip("wyoming", reason="the Wyoming tests need the test extra: pip install -e '.[test]'")

import mlx_qwen3tts  # noqa: E402
from serving import LIVE, PCM16, TEXT, live_feed, pieces, wait_for  # noqa: E402
from serving import tts  # noqa: E402, F401  (fixture)
from wyoming.audio import AudioChunk, AudioStart  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.event import Event  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice  # noqa: E402
from wyoming_client import Served, Wyoming, audio_of, kinds, run  # noqa: E402

SECOND = "And here is a second sentence, after the first."
OPTIONS = dict(seed=3, max_new_tokens=40)
LONG = dict(seed=0, max_new_tokens=200)  # runs to the budget on this text: seconds of work
VIVIAN = SynthesizeVoice(name="vivian")


def live_audio(tts, parts: list[str], speaker: str, **options) -> np.ndarray:
    """What the library speaks for these pieces written into one feed."""
    return tts.generate(live_feed(parts), speaker=speaker, **LIVE, **options).samples


@pytest.fixture(scope="module")
def served(tts):
    with Served(tts, OPTIONS) as s:
        yield s


def test_describe_lists_the_presets_with_their_languages_and_streaming(served, tts):
    async def go():
        async with Wyoming(served.port) as w:
            await w.send(Describe())
            return Info.from_event(await w.next())

    (program,) = run(go()).tts
    assert program.supports_synthesize_streaming and program.installed
    assert program.version == mlx_qwen3tts.__version__ and program.attribution.url
    assert [v.name for v in program.voices] == tts.speakers == ["eric", "vivian"]
    for voice in program.voices:
        assert voice.installed and sorted(voice.languages) == ["en", "zh"]
    assert "sichuan" in program.voices[0].description.lower()


def test_synthesize_streams_the_librarys_audio_from_the_first_frame(served, tts):
    async def go():
        async with Wyoming(served.port) as w:
            await w.send(Synthesize(TEXT, voice=SynthesizeVoice(name="Vivian")))
            named = await w.until("audio-stop")
            # A language alone (the library sends no language beside a name): the first voice, in it.
            await w.send(Synthesize(SECOND, voice=SynthesizeVoice(language="en_US")))
            return named, await w.until("audio-stop")

    events, by_language = run(go())
    assert kinds(events) == ["audio-start", "audio-chunk", "audio-stop"]
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    assert len(AudioChunk.from_event(events[1]).audio) == 1920 * 2  # one 80 ms frame first
    np.testing.assert_allclose(audio_of(events), tts.generate(TEXT, speaker="vivian", **OPTIONS).samples, atol=PCM16)
    expected = tts.generate(SECOND, speaker="eric", language="english", **OPTIONS).samples
    np.testing.assert_allclose(audio_of(by_language), expected, atol=PCM16)
    assert not np.allclose(expected, tts.generate(SECOND, speaker="eric", **OPTIONS).samples, atol=4 * PCM16)


def test_pieces_cut_inside_words_make_one_reply_and_its_copy_is_not_spoken(served, tts):
    parts = pieces(TEXT + " " + SECOND)
    before = len(served.state.records)

    async def go():
        async with Wyoming(served.port) as w:
            await w.send(SynthesizeStart(voice=SynthesizeVoice(name="eric")))
            await w.send(*(SynthesizeChunk(part) for part in parts))
            # Home Assistant's order: the whole text as a plain synthesize, then the stop.
            await w.send(Synthesize("".join(parts), voice=SynthesizeVoice(name="eric")), SynthesizeStop())
            streamed = await w.until("synthesize-stopped")
            await w.send(Synthesize(SECOND, voice=VIVIAN))  # the next reply is this one, not a copy
            return streamed, await w.until("audio-stop")

    streamed, after = run(go())
    assert kinds(streamed) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    np.testing.assert_allclose(audio_of(streamed), live_audio(tts, parts, "eric", **OPTIONS), atol=PCM16)
    np.testing.assert_allclose(audio_of(after), tts.generate(SECOND, speaker="vivian", **OPTIONS).samples,
                               atol=PCM16)
    first, second = list(served.state.records)[before:]
    assert first.chars == len(TEXT + " " + SECOND) and second.chars == len(SECOND)


def test_a_synthesize_repeating_the_stream_after_its_stop_is_not_spoken_again(served, tts):
    parts = pieces(SECOND)

    async def go():
        async with Wyoming(served.port) as w:
            await w.send(SynthesizeStart(voice=VIVIAN), *(SynthesizeChunk(p) for p in parts), SynthesizeStop())
            await w.send(Synthesize("  " + SECOND.replace(" ", "  ") + "\n", voice=VIVIAN))  # the copy
            await w.send(Synthesize(TEXT, voice=VIVIAN))
            streamed = await w.until("synthesize-stopped")
            return streamed, await w.until("audio-stop")

    streamed, after = run(go())
    np.testing.assert_allclose(audio_of(streamed), live_audio(tts, parts, "vivian", **OPTIONS), atol=PCM16)
    np.testing.assert_allclose(audio_of(after), tts.generate(TEXT, speaker="vivian", **OPTIONS).samples,
                               atol=PCM16)


def test_a_stream_whose_text_comes_only_as_its_plain_copy_is_spoken_once(served, tts):
    async def go():
        async with Wyoming(served.port) as w:
            await w.send(SynthesizeStart(voice=VIVIAN), Synthesize(SECOND, voice=VIVIAN), SynthesizeStop())
            streamed = await w.until("synthesize-stopped")
            await w.send(Synthesize(TEXT, voice=VIVIAN))
            return streamed, await w.until("audio-stop")

    streamed, after = run(go())
    assert kinds(streamed) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    np.testing.assert_allclose(audio_of(streamed), live_audio(tts, [SECOND], "vivian", **OPTIONS), atol=PCM16)
    np.testing.assert_allclose(audio_of(after), tts.generate(TEXT, speaker="vivian", **OPTIONS).samples,
                               atol=PCM16)


def test_a_slow_writer_hears_audio_before_it_sends_the_stop(served, tts):
    head, tail = pieces(TEXT[:25]), pieces(TEXT[25:])  # cut inside "test"

    async def go():
        async with Wyoming(served.port) as w:
            await w.send(SynthesizeStart(voice=VIVIAN), *(SynthesizeChunk(p) for p in head))
            early = [await w.next(), await w.next()]  # nothing more is sent until audio has come
            for part in tail:
                await w.send(SynthesizeChunk(part))
                await asyncio.sleep(0.02)
            await w.send(SynthesizeStop())
            return early + await w.until("synthesize-stopped")

    events = run(go())
    assert [e.type for e in events[:2]] == ["audio-start", "audio-chunk"]
    assert kinds(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    np.testing.assert_allclose(audio_of(events), live_audio(tts, head + tail, "vivian", **OPTIONS), atol=PCM16)


def test_bad_requests_get_an_error_that_says_what_to_do_and_the_connection_goes_on(served, tts):
    async def go():
        async with Wyoming(served.port) as w:
            out = {}
            await w.send(Synthesize(TEXT, voice=SynthesizeVoice(name="robot")))
            out["voice"] = Error.from_event(await w.next())
            await w.send(Synthesize(TEXT, voice=SynthesizeVoice(language="xx")))
            out["language"] = Error.from_event(await w.next())
            await w.client.write_event(Event("transcribe", {"language": "en"}))
            out["event"] = Error.from_event(await w.next())
            await w.send(SynthesizeChunk("stray"))
            out["chunk"] = Error.from_event(await w.next())
            # A stream in an unknown voice: its error, then its pieces are dropped and the stop answered.
            await w.send(SynthesizeStart(voice=SynthesizeVoice(name="nobody")), SynthesizeChunk("Hi there."))
            out["stream"] = Error.from_event(await w.next())
            await w.send(SynthesizeStop())
            out["stopped"] = (await w.next()).type
            await w.send(Synthesize(SECOND, voice=VIVIAN))
            out["audio"] = await w.until("audio-stop")
            return out

    out = run(go())
    assert out["voice"].code == "voice_not_found" and "eric, vivian" in out["voice"].text
    assert out["language"].code == "unknown_language" and "en (english)" in out["language"].text
    assert out["event"].code == "unknown_event" and "synthesize-start" in out["event"].text
    assert out["chunk"].code == "no_stream" and "synthesize-start first" in out["chunk"].text
    assert out["stream"].code == "voice_not_found" and out["stopped"] == "synthesize-stopped"
    np.testing.assert_allclose(audio_of(out["audio"]), tts.generate(SECOND, speaker="vivian", **OPTIONS).samples,
                               atol=PCM16)


def test_while_the_model_loads_describe_says_so_then_answers(tts):
    with Served(None, OPTIONS) as served:
        async def describe():
            async with Wyoming(served.port) as w:
                await w.send(Describe())
                return await w.next()

        loading = Error.from_event(run(describe()))
        assert loading.code == "model_loading" and "try again" in loading.text
        served.state.set_model(tts)
        assert [v.name for v in Info.from_event(run(describe())).tts[0].voices] == ["eric", "vivian"]


def test_a_client_that_leaves_mid_reply_stops_its_generation(tts):
    with Served(tts, LONG) as served:
        async def go():
            async with Wyoming(served.port) as w:
                await w.send(SynthesizeStart(voice=VIVIAN), SynthesizeChunk(TEXT), SynthesizeStop())
                assert (await w.next()).type == "audio-start"
                assert (await w.next()).type == "audio-chunk"
            # left: the connection is closed mid-reply

        run(go())
        wait_for(lambda: any(r.kind == "wyoming" for r in served.state.records), 30, "the reply's record")
        wait_for(lambda: not served.state.scheduler.busy, 30, "the model to be free")
        (record,) = [r for r in served.state.records if r.kind == "wyoming"]
        assert record.finish_reason == "client_gone" and record.frames < 199 // 2
        r = httpx.post(f"{served.http.url}/v1/audio/speech", timeout=60, json={
            "input": SECOND, "voice": "vivian", "response_format": "pcm", **OPTIONS})
        assert r.status_code == 200 and served.http.record(r.headers["x-request-id"]).ahead == 0


def test_a_stream_waiting_for_text_gives_the_model_to_an_http_request_and_goes_on(tts):
    with Served(tts, OPTIONS, ws_idle_seconds=0.3) as served:
        result = {}

        def request():
            result["r"] = httpx.post(f"{served.http.url}/v1/audio/speech", timeout=60, json={
                "input": SECOND, "voice": "eric", "response_format": "pcm", **OPTIONS})

        async def go():
            async with Wyoming(served.port) as w:
                await w.send(SynthesizeStart(voice=VIVIAN), SynthesizeChunk(TEXT))
                first = await w.until("audio-chunk")  # it holds the model: the HTTP request waits behind it
                thread = threading.Thread(target=request)
                thread.start()
                await asyncio.to_thread(thread.join, 60)  # it ends only once the stream gives the model back
                await w.send(SynthesizeChunk(" " + SECOND), SynthesizeStop())
                return first + await w.until("synthesize-stopped")

        events = run(go())
        assert result["r"].status_code == 200 and served.http.record(result["r"].headers["x-request-id"]).ahead == 1
        # One audio-start ... audio-stop: the later text goes on in the same reply, from a new context.
        assert kinds(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
        expected = np.concatenate([tts.generate(TEXT, speaker="vivian", **LIVE, **OPTIONS).samples,
                                   live_audio(tts, [" " + SECOND], "vivian", **OPTIONS)])
        np.testing.assert_allclose(audio_of(events), expected, atol=PCM16)
