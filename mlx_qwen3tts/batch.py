"""Continuous batching: the streams running on one talker advance together, one frame a step.

Each stream's prefill runs on the batch's thread between two steps (run beside the steps, it
slows both, on a 2-core CPU several times over), and the stream joins the step after it. A
batch step runs the code predictor's 15 draws for every stream in it, then feeds the frames
back to the talker, as batched products; each stream keeps its own caches, sampler settings
and random keys, and gets exactly the codes it would get alone. A stream leaves at
EOS, its budget, a fault or when its reader stops, without holding up the others; a stream
whose next text token has not arrived sits the step out and comes back when it does.

    engine = BatchEngine(talker, max_batch=8)
    for codes, is_last in engine.frames(prompt, sampling, seed): ...   # from any thread
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import mlx.core as mx
import numpy as np

from .batch_member import AHEAD, Member, Prefill, Reader, cat
from .generation import queues_ahead
from .models.talker import Talker
from .prompt import PromptVectors
from .row_sampling import RowDraw
from .sampling import SamplingConfig

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 8
_IDLE_POLL_S = 0.005  # how often streams that all wait for text are looked at again
_SHUT = "the batch engine is shut down: the process is exiting"


class BatchEngine:
    """Runs every stream of one talker as one batch on a thread of its own."""

    def __init__(self, talker: Talker, max_batch: int = DEFAULT_MAX_BATCH):
        self._talker = weakref.ref(talker)  # the thread below must not keep a model alive
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._prefills: list[Prefill] = []  # asked for, not prefilled yet
        self._waiting: list[Member] = []  # prefilled, waiting for a place
        self._active: list[Member] = []
        self._holds = 0
        self._closing = self._parked = False
        self.steps = 0  # batch steps run (for the benchmark and /health)
        self.rows = 0  # stream-frames made
        self.widest = 0  # the most streams one step has run
        # Never ended (see lanes.py: a thread that ran compiled functions must outlive them).
        self._thread = threading.Thread(target=self._serve, name="mlx-qwen3tts-batch", daemon=True)
        self._thread.start()
        atexit.register(self._park)

    def _park(self, timeout: float = 10.0) -> None:
        """At exit: lets the step in flight finish and stops the thread where it waits. MLX aborts
        the process when it is torn down under a thread that is still computing."""
        with self._cond:
            self._closing = True
            for job in self._prefills:  # not started: its caller hears of it
                job.member.set_exception(RuntimeError(_SHUT))
            self._prefills.clear()
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._parked, timeout)

    @property
    def talker(self) -> Talker:
        return self._talker()

    @property
    def max_batch(self) -> int:
        """Streams that step together at most; more wait, prefilled, for a place."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"max_batch must be a whole number of streams, at least 1; got {value!r}")
        self._max_batch = value

    @contextmanager
    def held(self) -> Iterator[None]:
        """No step starts while held: streams gather (prefilled) and then start together, in
        one step (benchmarks and tests use it to start a batch at a known size)."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify_all()

    # -- the readers' side -----------------------------------------------------------------

    @property
    def in_use(self) -> int:
        """Streams in the batch now."""
        with self._cond:
            return len(self._active)

    @property
    def queued(self) -> int:
        """Streams prefilled and waiting for a place in the batch."""
        with self._cond:
            return len(self._waiting)

    def frames(self, prompt: PromptVectors, sampling: SamplingConfig, seed: int | None = None,
               ahead: int | None = AHEAD) -> Iterator[tuple[np.ndarray, bool]]:
        """`generate_frames` through the batch: `(codes (16,) int32, is_last)` per frame.

        Returns once the stream is prefilled (on the batch's thread, before its next step); the
        frames come from the batch, at most `ahead` past what was read (None: no limit, for a
        segment started ahead of its turn). Closing the iterator takes the stream out at the
        next step.
        """
        mx.eval(prompt.prefill)  # a graph cannot move threads: the prompt is evaluated where it was built
        job = Prefill(prompt, sampling, seed, ahead, Future())
        with self._cond:
            if self._closing:
                raise RuntimeError(_SHUT)
            self._prefills.append(job)
            self._cond.notify_all()
        try:
            member = job.member.result()
        except BaseException:  # interrupted: a stream prefilled for nobody leaves at once
            job.member.add_done_callback(self._abandoned)
            raise
        return Reader(self, member) if member is not None else iter(())

    def _abandoned(self, prefilled: Future) -> None:
        if prefilled.exception() is None and prefilled.result() is not None:
            self._leave(prefilled.result())

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _leave(self, member: Member) -> None:
        with self._cond:
            member.left = True
            self._cond.notify_all()

    # -- the batch thread ------------------------------------------------------------------

    def _serve(self) -> None:
        # On a GPU step n+1 is queued before step n is read, as the single-stream loop does, so
        # the device never waits on Python; a stream that step n ends has its share of n+1
        # dropped. On the CPU step n is read first (see generation.queues_ahead).
        early = queues_ahead()
        with mx.stream(mx.new_stream(mx.default_device())):
            inflight = None
            while True:
                if inflight is not None and not early:
                    self._guarded(inflight[0], lambda _: self._finish(*inflight))
                    inflight = None
                if self._closing and inflight is None:
                    with self._cond:
                        self._parked = True
                        self._cond.notify_all()
                        while True:
                            self._cond.wait()
                self._prefill()
                run = self._next_batch(wait=inflight is None)
                queued = self._guarded(run, self._queue) if run else None
                if inflight is not None:
                    self._guarded(inflight[0], lambda _: self._finish(*inflight))
                inflight, run, queued = queued, None, None

    def _prefill(self) -> None:
        """Prefills the stream asked for first, if any, and (unless held) makes its first frame;
        it waits for a place from then on."""
        with self._cond:
            if not self._prefills:
                return
            job = self._prefills.pop(0)
        try:
            member = Member.prefilled(self.talker, job)
            if member is not None:
                with self._cond:
                    self._waiting.append(member)
        except BaseException as e:  # the stream's caller hears of it; the engine goes on
            job.member.set_exception(e)
            return
        job.member.set_result(member)
        with self._cond:
            alone = member is not None and not self._holds and member.ready()
        if alone:
            # Its first frame at once, in a step of its own: that costs the others less than
            # waiting for a step of the whole batch costs its first audio.
            step = self._guarded([member], self._queue)
            if step is not None:
                self._guarded(step[0], lambda _: self._finish(*step))

    def _guarded(self, run: list[Member], fn):
        try:
            return fn(run)
        except BaseException as e:  # every stream in the step hears of it; the engine goes on
            logger.exception("a batch step failed")
            for m in run:
                self._fail(m, e)
            return None

    def _next_batch(self, wait: bool) -> list[Member]:
        """The streams that step next; with `wait`, waits until there is one."""
        with self._cond:
            while True:
                if self._closing:
                    return []
                for m in [m for m in self._active + self._waiting if m.left]:
                    self._drop(m)
                if self._holds:
                    if not wait or self._prefills:
                        return []
                    self._cond.wait()
                    continue
                while self._waiting and len(self._active) < self.max_batch:
                    self._active.append(self._waiting.pop(0))
                self._probe_waiting()
                run = [m for m in self._active if m.ready()]
                if run or not wait or self._prefills:
                    return run
                self._cond.wait(_IDLE_POLL_S if self._active or self._waiting else None)

    def _probe_waiting(self) -> None:
        # A stream queued behind a full batch may be cancelled meanwhile: its text says so.
        for m in list(self._waiting):
            if m.feeds() and m.prompt.ready(m.step):
                try:
                    m.prompt.text_at(m.step)  # lazy: nothing is computed
                except BaseException as e:
                    self._fail(m, e)

    def _drop(self, m: Member) -> None:
        for group in (self._active, self._waiting):
            if m in group:
                group.remove(m)
        m.free()

    def _fail(self, m: Member, error: BaseException) -> None:
        with self._cond:
            self._drop(m)
        m.results.put(error)

    def _queue(self, run: list[Member]):
        """Builds one step for `run` and starts it; returns what `_finish` reads."""
        texts = {}
        for m in list(run):
            if m.feeds():
                try:
                    texts[id(m)] = m.prompt.text_at(m.step)
                except BaseException as e:  # cancelled, or the text's producer failed
                    self._fail(m, e)
                    run.remove(m)
        if not run:
            return None
        talker = run[0].stepper.talker
        draw = RowDraw(tuple(m.stepper.sample_rest for m in run))
        hidden = cat([m.hidden for m in run])
        c0 = cat([m.c0 for m in run])
        keys = mx.stack([m.stepper.frame_keys for m in run], axis=1)
        frames = talker.predict_frames(hidden, c0, draw, keys)
        fed = [m for m in run if m.feeds()]
        drawn = None
        if fed:
            rows = frames if len(fed) == len(run) else frames[mx.array([run.index(m) for m in fed])]
            logits, hidden = talker.feed_streams(rows, mx.stack([texts[id(m)] for m in fed]),
                                                 [m.stepper.cache for m in fed])
            for j, m in enumerate(fed):
                m.c0 = m.stepper.draw_c0(rows[j:j + 1], logits[j:j + 1])
                m.hidden = hidden[j:j + 1]
            drawn = cat([m.c0 for m in fed])
        for m in run:
            m.step += 1
        mx.async_eval(frames, *(m.hidden for m in fed), *((drawn,) if fed else ()))
        return run, frames, fed, drawn

    def _finish(self, run: list[Member], frames: mx.array, fed: list[Member], drawn: mx.array | None) -> None:
        """Reads a step and hands each stream its frame; streams that end leave."""
        codes = np.array(frames)
        eos = dict(zip(map(id, fed), np.array(drawn).tolist())) if fed else {}
        self.steps += 1
        self.rows += len(run)
        self.widest = max(self.widest, len(run))
        for i, m in enumerate(run):
            if m.stepper is None:  # ended (or left) at the step before: this share is dropped
                continue
            last = id(m) not in eos or eos[id(m)] == m.stepper.eos
            if last:  # freed before its reader hears of it: its memory is gone when the request is
                with self._cond:
                    self._drop(m)
            m.results.put((codes[i], last))
