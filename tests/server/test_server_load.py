"""The server under load: eight clients at once each get their own audio; the queue serves in
arrival order and answers 503 past --max-queue; a client that leaves mid-stream stops its
generation and frees the model at once; a hundred requests leave memory flat."""

from __future__ import annotations

import os
import threading

import httpx
import numpy as np
import pytest

import mlx_qwen3tts
from serving import TEXT, LiveServer, Socket, decode, speaking_checkpoint, wait_for

OPTIONS = dict(max_new_tokens=9)  # 8 frames
PCM16 = 1 / 32768 + 1e-6
CLIENTS = [("vivian", 1, "One client, one voice."), ("eric", 2, "Another client speaks here."),
           ("vivian", 3, TEXT), ("eric", 4, "Numbers: 1, 2, 3."), ("vivian", 5, "Short one."),
           ("eric", 6, "The last but two."), ("vivian", 7, "Almost the end."), ("eric", 8, "The eighth voice.")]


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    return mlx_qwen3tts.load(speaking_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv"))


@pytest.fixture(scope="module")
def references(tts):
    return [tts.generate(text, speaker=voice, seed=seed, **OPTIONS).samples for voice, seed, text in CLIENTS]


def post(server, voice: str, seed: int, text: str, **fields) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/audio/speech", timeout=120, json={
        "input": text, "voice": voice, "seed": seed, "response_format": "pcm", **OPTIONS, **fields})


def test_eight_clients_at_once_each_get_their_own_audio(tts, references):
    import openai

    results: dict[int, bytes] = {}
    start = threading.Barrier(len(CLIENTS))

    def client(i: int, server) -> None:
        voice, seed, text = CLIENTS[i]
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)
        start.wait(30)
        results[i] = api.audio.speech.create(model="tts-1", voice=voice, input=text, response_format="pcm",
                                             extra_body={"seed": seed, **OPTIONS}).content

    with LiveServer(tts, max_queue=len(CLIENTS) - 1) as server:  # one running, seven waiting: all fit
        threads = [threading.Thread(target=client, args=(i, server)) for i in range(len(CLIENTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert sorted(results) == list(range(len(CLIENTS)))
    for i, body in results.items():
        audio = decode(body, "pcm")
        np.testing.assert_allclose(audio, references[i], atol=PCM16)
        others = [j for j in range(len(CLIENTS)) if j != i and len(references[j]) == len(audio)]
        assert others and not any(np.allclose(audio, references[j], atol=4 * PCM16) for j in others)


def test_requests_share_the_batch_and_the_queue_forms_beyond_it(tts, references):
    results: dict[int, bytes] = {}

    def client(i: int, server) -> None:
        results[i] = post(server, *CLIENTS[i]).content

    with LiveServer(tts, max_queue=len(CLIENTS), max_batch=4) as server:
        with tts.batch.held():  # four prefill and wait to step together; four more queue
            threads = [threading.Thread(target=client, args=(i, server)) for i in range(len(CLIENTS))]
            for t in threads:
                t.start()
            wait_for(lambda: tts.batch.queued == 4 and server.state.scheduler.waiting == 4, 60,
                     "four requests in the batch and four in the queue")
            health = httpx.get(f"{server.url}/health", timeout=10).json()
            assert health["batch"] == {"max": 4, "jobs": 4, "streams": 0} and health["waiting"] == 4
            assert health["busy"] is True
        for t in threads:
            t.join(120)
        assert httpx.get(f"{server.url}/health", timeout=10).json()["batch"]["jobs"] == 0
    assert tts.batch.widest >= 4
    assert sorted(results) == list(range(len(CLIENTS)))
    for i, body in results.items():  # each its own audio, as alone
        np.testing.assert_allclose(decode(body, "pcm"), references[i], atol=PCM16)


def test_the_queue_serves_in_arrival_order_and_past_its_size_answers_503(tts, references):
    with LiveServer(tts, max_queue=3, ws_idle_seconds=60) as server, Socket(server) as ws:
        ws.send("session.config", voice="vivian", **OPTIONS)
        ws.send("input.text", text=TEXT)  # unflushed: the session holds the model until it flushes
        wait_for(lambda: server.state.scheduler.busy, 30, "the session to take the model")
        responses: dict[int, httpx.Response] = {}
        threads = []
        for i in range(3):
            threads.append(threading.Thread(target=lambda i=i: responses.update({i: post(server, *CLIENTS[i])})))
            threads[-1].start()
            wait_for(lambda i=i: server.state.scheduler.waiting == i + 1, 30, f"request {i} to queue")
        busy = post(server, *CLIENTS[3])
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
        error = busy.json()["error"]
        assert error["code"] == "server_busy" and error["type"] == "server_error"
        assert "3 requests are waiting already" in error["message"]
        ws.send("input.flush")  # the session speaks its text, then gives the model to the queue
        ws.until("audio.done")
        for t in threads:
            t.join(120)
        ids = [responses[i].headers["x-request-id"] for i in range(3)]
        for request_id in ids:
            server.record(request_id)  # each one's log line is written
        served = [r.id for r in server.state.records if r.id in ids]
    assert served == ids  # first come, first served
    for i in range(3):
        np.testing.assert_allclose(decode(responses[i].content, "pcm"), references[i], atol=PCM16)


def test_a_client_that_leaves_mid_stream_stops_its_generation(tts):
    long = dict(seed=0, max_new_tokens=200)  # runs to its budget: about 2.8 s of work
    with LiveServer(tts) as server:
        baseline = server.record(post(server, *CLIENTS[0]).headers["x-request-id"])
        with httpx.stream("POST", f"{server.url}/v1/audio/speech", timeout=60, json={
                "input": TEXT, "voice": "vivian", "response_format": "pcm", **long}) as r:
            first = next(r.iter_bytes())
            request_id = r.headers["x-request-id"]
        assert len(first) > 0  # leaving the block closes the connection with the body half read
        record = server.record(request_id)
        assert record.finish_reason == "client_gone" and 0 < record.frames < 199
        after = server.record(post(server, *CLIENTS[1]).headers["x-request-id"])
    assert after.ahead == 0 and after.finish_reason == "max_new_tokens"  # the model was free at once
    assert after.ttfb < baseline.ttfb + 5.0, (baseline.ttfb, after.ttfb)


def _rss() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_hundred_requests_keep_memory_flat(tts):
    rss = []
    with LiveServer(tts) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        for i in range(100):
            r = http.post("/v1/audio/speech", json={"input": "Hi there.", "voice": "vivian", "seed": i,
                                                    "response_format": "wav", "max_new_tokens": 3})
            assert r.status_code == 200 and len(decode(r.content, "wav")) == 2 * 1920
            rss.append(_rss())
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert rss[-1] <= 1.1 * rss[9], [round(v / 2**20) for v in rss[9::10]]
