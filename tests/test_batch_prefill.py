"""A stream's prefill in the batch: on the batch's thread between steps, its faults to its caller."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import mlx.core as mx
import numpy as np
import pytest
from test_batch import GREEDY, REQUESTS, engine_codes, on_threads, solo, wait_for
from tiny import make_tiny_checkpoint

import mlx_qwen3tts
from mlx_qwen3tts import batch as batch_module
from mlx_qwen3tts.batch import BatchEngine
from mlx_qwen3tts.generation import FrameStepper, queues_ahead


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    return mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path_factory.mktemp("cv"), kind="custom_voice"))


def test_prefills_run_on_the_batch_thread_never_beside_a_step(tts, monkeypatch):
    want = [solo(tts, text, **kw) for text, kw in REQUESTS]
    engine = BatchEngine(tts.model.talker, max_batch=4)
    prepared = [tts.prepare(text, **kw) for text, kw in REQUESTS]
    mx.eval([p.prompt.prefill for p in prepared])
    threads_seen, overlaps, stepping = set(), [], threading.Event()
    real_prefill, real_queue, real_finish = FrameStepper.prefill, BatchEngine._queue, BatchEngine._finish

    def prefill(self):
        threads_seen.add(threading.current_thread().name)
        overlaps.append(stepping.is_set())
        return real_prefill(self)

    def queue(self, run):
        stepping.set()
        return real_queue(self, run)

    def finish(self, *args):
        real_finish(self, *args)
        stepping.clear()

    monkeypatch.setattr(FrameStepper, "prefill", prefill)
    monkeypatch.setattr(BatchEngine, "_queue", queue)
    monkeypatch.setattr(BatchEngine, "_finish", finish)
    def run(p):
        return engine_codes(engine.frames(p.prompt, p.sampling, p.seed))

    # One stream steps; three more join while it does (their prefills queue on the batch's thread).
    threads, got, errors = on_threads([lambda p=p: run(p) for p in prepared[:1]])
    wait_for(lambda: engine.steps > 0 or errors)
    more, got_more, errors_more = on_threads([lambda p=p: run(p) for p in prepared[1:]])
    for t in threads + more:
        t.join(120)
    assert not errors and not errors_more, errors + errors_more
    assert threads_seen == {"mlx-qwen3tts-batch"}
    assert len(overlaps) == len(REQUESTS)
    if not queues_ahead():  # on a GPU the next step is queued before a step is read
        assert not any(overlaps)
    for w, g in zip(want, got + got_more):
        np.testing.assert_array_equal(g, w)


def test_a_failing_prefill_reaches_its_caller_and_the_engine_goes_on(tts, monkeypatch):
    engine = BatchEngine(tts.model.talker, max_batch=2)
    p = tts.prepare("short one", speaker="vivian", max_new_tokens=8, **GREEDY)
    mx.eval(p.prompt.prefill)
    real_prefill = FrameStepper.prefill

    def broken(self):
        raise RuntimeError("the prompt could not be run")

    monkeypatch.setattr(FrameStepper, "prefill", broken)
    with pytest.raises(RuntimeError, match="could not be run"):
        engine.frames(p.prompt, p.sampling, p.seed)
    monkeypatch.setattr(FrameStepper, "prefill", real_prefill)
    np.testing.assert_array_equal(engine_codes(engine.frames(p.prompt, p.sampling, p.seed)),
                                  solo(tts, "short one", speaker="vivian", max_new_tokens=8, **GREEDY))
    assert engine.in_use == 0 and engine.queued == 0


class _Interrupted(Future):
    """A caller interrupted (Ctrl-C) while its stream is being prefilled."""

    interrupted = False

    def result(self, timeout=None):
        if self.interrupted:
            return super().result(timeout)
        self.interrupted = True
        self.exception()  # waits for the prefill
        raise KeyboardInterrupt


def test_a_caller_interrupted_during_its_prefill_leaves_no_stream_behind(tts, monkeypatch):
    engine = BatchEngine(tts.model.talker, max_batch=2)
    p = tts.prepare("short one", speaker="vivian", max_new_tokens=40, **GREEDY)
    mx.eval(p.prompt.prefill)
    monkeypatch.setattr(batch_module, "Future", _Interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.frames(p.prompt, p.sampling, p.seed)
    wait_for(lambda: engine.in_use == 0 and engine.queued == 0)
    steps = engine.steps
    monkeypatch.setattr(batch_module, "Future", Future)
    assert len(engine_codes(engine.frames(p.prompt, p.sampling, p.seed))) > 0
    assert engine.steps > steps  # the engine steps for the next caller
