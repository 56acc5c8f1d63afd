"""Streams across threads, a thread per request, and memory in a long-lived process."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from tiny import make_tiny_checkpoint

ARGS = dict(speaker="vivian", language="english", seed=11, max_new_tokens=30)
TEXT = "hello world, hello"


@pytest.fixture(scope="module")
def tts(tiny_tts):
    return tiny_tts


@pytest.fixture(scope="module")
def expected(tts):
    return np.concatenate([c.samples for c in tts.stream(TEXT, **ARGS)])


def on_thread(fn):
    """`fn()` run on a new thread; its result (or its exception, raised here)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def samples(chunks) -> np.ndarray:
    return np.concatenate([c.samples for c in chunks])


def test_a_stream_made_here_is_read_on_another_thread(tts, expected):
    stream = tts.stream(TEXT, **ARGS)
    np.testing.assert_allclose(on_thread(lambda: samples(stream)), expected, atol=1e-6)


def test_a_stream_made_on_another_thread_is_read_here(tts, expected):
    stream = on_thread(lambda: tts.stream(TEXT, **ARGS))
    np.testing.assert_allclose(samples(stream), expected, atol=1e-6)


def test_a_stream_advanced_by_a_new_thread_at_every_step(tts, expected):
    stream = tts.stream(TEXT, **ARGS)
    chunks = []
    while True:
        chunk = on_thread(lambda: next(stream, None))
        if chunk is None:
            break
        chunks.append(chunk)
    assert len(chunks) > 3
    np.testing.assert_allclose(samples(chunks), expected, atol=1e-6)


def test_a_thread_pool_shares_one_stream(tts, expected):
    stream = tts.stream(TEXT, **ARGS)
    with ThreadPoolExecutor(4) as pool:
        chunks = []
        while (chunk := pool.submit(next, stream, None).result()) is not None:
            chunks.append(chunk)
    np.testing.assert_allclose(samples(chunks), expected, atol=1e-6)


def test_fifty_requests_each_on_a_new_thread_keep_memory_flat(tts):
    active, frames = [], tts.model.talker._frames
    for i in range(50):
        # A sampler setting of its own every few requests: the compiled frames stay bounded.
        on_thread(lambda: tts.generate(TEXT, speaker="vivian", seed=i, max_new_tokens=8,
                                       temperature=0.5 + (i % 7) / 10))
        active.append(mx.get_active_memory())
    assert len(frames) <= 4
    assert active[49] <= active[9] * 1.10, (active[9], active[49])


def test_memory_is_released_after_long_and_short_requests(tts):
    peaks, active = [], []
    for i in range(50):
        gc.collect()  # earlier garbage is freed now, not into the cache after the request
        mx.reset_peak_memory()
        if i % 25 == 0:  # a long one, decoded offline in windows past 300 frames
            audio = tts.generate(TEXT, speaker="vivian", seed=i, max_new_tokens=330, guards=False, decode="reference")
            assert len(audio.codes) > 300 or audio.finish_reason == "eos"
        else:
            tts.generate(TEXT, speaker="vivian", seed=i, max_new_tokens=10)
        peaks.append(mx.get_peak_memory())
        active.append(mx.get_active_memory())
        # The request's transients went back to the system (a long one leaves ~30 MB otherwise).
        assert mx.get_cache_memory() < 2**20
    assert active[49] <= active[9] * 1.10, (active[9], active[49])
    assert peaks[25] <= peaks[0] * 1.10  # long ones
    assert max(peaks[41:]) <= max(peaks[11:20]) * 1.10  # short ones


def test_a_stream_waiting_for_its_text_holds_up_nothing_else(tts, tmp_path):
    from mlx_qwen3tts import TextFeed

    feed = TextFeed()
    feed.write("hello there, and ")  # the stream starts, then waits for more text
    stream = tts.stream(feed, speaker="vivian", max_new_tokens=60)
    first = next(stream)
    assert len(first.samples)
    # Meanwhile other work goes on: a decode on this model, a whole generation on another.
    assert len(tts.decode(np.zeros((3, 16), np.int32))) == 3 * 1920
    other = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "other", seed=2))
    assert len(other.generate_codes("hi there", speaker="vivian", max_new_tokens=5)) == 4
    feed.write("goodbye.")
    feed.close()
    rest = list(stream)
    assert rest[-1].is_last


def test_closing_a_stream_while_another_thread_reads_it(tts):
    from mlx_qwen3tts import TextFeed

    feed = TextFeed()
    feed.write("hello there, ")
    stream = tts.stream(feed, speaker="vivian", max_new_tokens=200)
    next(stream)
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream))  # blocks: the text stops here
    reader.start()
    stream.close()  # from this thread, while the reader waits inside next()
    reader.join(30)
    assert not reader.is_alive()
    assert list(stream) == []  # closed for good: nothing starts again
    assert len(tts.generate_codes("Next.", speaker="vivian", max_new_tokens=4)) == 3
