"""Lanes: MLX work on the package's own threads, results and errors handed back, a stream kept
on one thread for its whole life, and lanes reused (no model needed)."""

from __future__ import annotations

import threading

import pytest

from mlx_qwen3tts.lanes import Worker


def test_call_runs_on_a_lane_and_hands_back_the_result_or_the_error():
    worker = Worker("test-lanes")
    name = worker.call(lambda: threading.current_thread().name)
    assert name.startswith("test-lanes-") and name != threading.current_thread().name

    def fail():
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        worker.call(fail)


def test_a_call_from_a_lane_runs_at_once_and_lanes_are_reused():
    worker = Worker("test-nested")
    outer = worker.call(lambda: (threading.current_thread().name, worker.call(lambda: threading.current_thread().name)))
    assert outer[0] == outer[1]
    worker.call(lambda: None)
    assert len(worker._lanes) == 1  # one call at a time never needs a second lane


def test_a_stream_lives_on_one_lane_from_any_reading_thread():
    worker = Worker("test-iter")
    events: list[str] = []

    def make():
        for i in range(4):
            yield i, threading.current_thread().name

    it = worker.iterate(make, before=lambda: events.append("before"), after=lambda: events.append("after"))
    got = [next(it)]
    reader = threading.Thread(target=lambda: got.extend(it))
    reader.start()
    reader.join(30)
    assert [i for i, _ in got] == [0, 1, 2, 3]
    assert len({name for _, name in got}) == 1 and events == ["before", "after"]


def test_close_cancels_then_closes_the_generator_and_frees_the_lane():
    worker = Worker("test-close")
    events: list[str] = []

    def make():
        try:
            while True:
                yield 1
        finally:
            events.append("generator closed")

    it = worker.iterate(make, after=lambda: events.append("after"), cancel=lambda: events.append("cancel"))
    assert next(it) == 1
    it.close()
    it.close()  # a second close does nothing
    assert events == ["cancel", "generator closed", "after"]
    assert list(it) == [] and worker._idle == worker._lanes


def test_a_stream_closed_before_its_first_step_takes_no_lane():
    worker = Worker("test-unstarted")
    it = worker.iterate(lambda: iter([1]), after=lambda: pytest.fail("nothing ran, nothing to release"))
    it.close()
    assert worker._lanes == []
