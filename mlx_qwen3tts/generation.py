"""The one generation loop: prompt vectors in, one 16-code frame out per step.

Every mode (preset speaker, voice design, cloning) reaches this loop; they differ only in the
prompt vectors. Each step runs the code predictor for the frame whose codebook 0 was just
drawn, feeds the frame back into the talker with the next text-side vector and draws the next
codebook 0.

The lean path (the default) runs the code predictor's 15 steps, sampling included, as one
compiled graph, queues step n+1 with `mx.async_eval` before reading step n, and reads one
scalar per frame. The plain path (`compiled=False`) is the step-by-step form it must equal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import mlx.core as mx
from mlx_lm.models.cache import KVCache

from .models.talker import Talker
from .prompt import PromptVectors
from .sampling import Sampler, SamplingConfig, TalkerLogitsProcessor


class HostSyncs:
    """Counts the host synchronizations the loop forces (values read back to Python)."""

    count = 0

    @classmethod
    def item(cls, x: mx.array) -> int:
        cls.count += 1
        return x.item()

    @classmethod
    def eval(cls, *arrays) -> None:
        cls.count += 1
        mx.eval(*arrays)


def generation_stream() -> mx.Stream:
    """The stream generation runs on, one per thread (MLX streams belong to the thread that
    made them): the codec decode a consumer queues on the default stream is then not held
    behind the frame queued ahead."""
    return _STREAM


# A stream object that stands for one stream per thread, made on first use in each.
_STREAM = mx.new_thread_local_stream(mx.default_device())


def queues_ahead() -> bool:
    """Whether the batch queues step n+1 before it reads step n. On a GPU that keeps the device
    busy while Python reads. On the CPU `mx.async_eval` returns only once all but a few of a
    step's operations have run (MLX keeps at most ten tasks in flight), so queueing ahead would
    hand every frame out a step late and gain nothing."""
    return mx.default_device().type == mx.DeviceType.gpu


@contextmanager
def wired_limit(*streams):
    """On Apple GPUs, keeps the weights wired in memory while generating; a no-op elsewhere.

    The limit is restored only after `streams` (and the GPU's default stream) are done: it must
    not change while a queued frame may still run.
    """
    metal = getattr(mx, "metal", None)
    if sys.platform != "darwin" or metal is None or not metal.is_available():
        yield
        return
    # The GPU's own figures: the default device may be the CPU (mx.set_default_device(mx.cpu)).
    info = mx.device_info(mx.gpu)
    old = mx.set_wired_limit(info["max_recommended_working_set_size"])
    try:
        yield
    finally:
        for stream in (*streams, mx.gpu):
            mx.synchronize(stream)
        mx.set_wired_limit(old)


class FrameStepper:
    """The state of one generation and its two halves per frame (the bench times them apart)."""

    def __init__(self, talker: Talker, prompt: PromptVectors, sampling: SamplingConfig,
                 seed: int | None = None, compiled: bool = True):
        cfg = talker.config
        self.talker, self.prompt = talker, prompt
        self.groups = cfg.code_predictor.num_code_groups
        self.eos = cfg.codec_eos_token_id
        self.processor = TalkerLogitsProcessor(cfg.vocab_size, self.eos, cfg.codebook_size,
                                               sampling.repetition_penalty)
        self.sample_c0 = Sampler(sampling.do_sample, sampling.temperature, sampling.top_k, sampling.top_p)
        sample_rest = Sampler(sampling.subtalker_dosample, sampling.subtalker_temperature,
                              sampling.subtalker_top_k, sampling.subtalker_top_p)
        self.sample_rest = sample_rest
        self.key = mx.random.key(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        self.cache = [KVCache() for _ in talker.model.layers]
        if compiled:
            self.predict = talker.compiled_frame(sample_rest)
        else:
            cp_cache = [KVCache() for _ in talker.code_predictor.model.layers]

            def predict(hidden, c0, keys):
                for c in cp_cache:
                    c.offset = 0  # reusing the buffers keeps the per-frame cache free of allocations
                return talker.predict_frame(hidden, c0, cp_cache, sample_rest, keys)

            self.predict = predict
        self._frame_keys = None  # the code predictor's keys for the frame to come

    def _next_keys(self) -> mx.array:
        self.key, k0, k1 = mx.random.split(self.key, 3)
        self._frame_keys = mx.random.split(k1, self.groups - 1)
        return k0

    def prefill(self) -> tuple[mx.array, mx.array]:
        """Runs the prompt; returns the first codebook-0 draw (1,) and its hidden state (1, 1, D)."""
        logits, hidden = self.talker(self.prompt.prefill, self.cache)
        c0 = self.sample_c0(self.processor(logits[:, -1]), self._next_keys())
        return c0, hidden[:, -1:]

    def settle(self, *arrays: mx.array) -> None:
        """Evaluates the stepper's state (and `arrays`): a graph cannot move to another thread,
        evaluated arrays can."""
        p = self.processor
        mx.eval(*arrays, self.key, self._frame_keys, p._seen, p._suppress, p._no_eos,
                [(c.keys, c.values) for c in self.cache])

    @property
    def frame_keys(self) -> mx.array:
        """The code predictor's keys (15, 2) for the frame to come."""
        return self._frame_keys

    def code_predictor(self, hidden: mx.array, c0: mx.array) -> mx.array:
        """The frame (1, 16) whose codebook 0 is `c0`."""
        return self.predict(hidden, c0, self._frame_keys)

    def talker_step(self, frame: mx.array, step: int) -> tuple[mx.array, mx.array]:
        """Feeds frame `step` back; returns the next codebook-0 draw and its hidden state."""
        logits, hidden = self.talker.feed(frame, self.prompt.text_at(step), self.cache)
        return self.draw_c0(frame, logits), hidden

    def draw_c0(self, frame: mx.array, logits: mx.array) -> mx.array:
        """Records fed-back `frame` (1, 16) and draws the next codebook 0 (1,) from `logits` (1, V)."""
        self.processor.update(frame[:, 0])
        return self.sample_c0(self.processor(logits), self._next_keys())


def generate_frames(talker: Talker, prompt: PromptVectors, sampling: SamplingConfig,
                    seed: int | None = None, compiled: bool = True) -> Iterator[tuple[mx.array, bool]]:
    """Yields `(frame, is_last)` per frame, `frame` a (16,) int32 array, until EOS or
    `max_new_tokens` codebook-0 draws.

    As in the reference, the last of `max_new_tokens` draws never gets its residual codes,
    so at most `max_new_tokens - 1` frames come out. `is_last` is known as the frame is
    yielded: the next codebook-0 draw is made in the same step. Text the prompt has not
    received yet is waited for (`prompt.text_at` blocks), after the frame before it is out.
    `compiled=False` runs the plain step-by-step loop (same codes, more host round trips).
    """
    stepper = FrameStepper(talker, prompt, sampling, seed, compiled)
    loop = _lean_frames if compiled else _plain_frames
    yield from loop(stepper, sampling.max_new_tokens - 1)  # the last draw gets no residual codes


def _plain_frames(s: FrameStepper, last_step: int) -> Iterator[tuple[mx.array, bool]]:
    c0, hidden = s.prefill()
    HostSyncs.eval(c0, hidden)
    if HostSyncs.item(c0) == s.eos or last_step <= 0:
        return
    for step in range(last_step):
        frame = s.code_predictor(hidden, c0)
        c0, hidden = s.talker_step(frame, step)
        HostSyncs.eval(frame, c0, hidden)
        is_last = step + 1 == last_step or HostSyncs.item(c0) == s.eos
        yield frame[0], is_last
        if is_last:
            return


def _lean_frames(s: FrameStepper, last_step: int) -> Iterator[tuple[mx.array, bool]]:
    stream = generation_stream()

    def queue(step: int, c0: mx.array, hidden: mx.array):
        with mx.stream(stream):
            frame = s.code_predictor(hidden, c0)
            if step + 1 == last_step:  # the budget's last draw: its value is never read
                out = (frame[0], None, None)
            else:
                c0, hidden = s.talker_step(frame, step)
                out = (frame[0], c0, hidden)
        mx.async_eval(*(x for x in out if x is not None))
        return out

    with mx.stream(stream):
        c0, hidden = s.prefill()
    if last_step <= 0 or HostSyncs.item(c0) == s.eos:
        return
    pending = queue(0, c0, hidden)
    for step in range(last_step):
        row, c0, hidden = pending
        # Frame n+1 goes into the queue before frame n is read, so the device never waits on
        # Python; unless its text has not arrived, which is waited for once frame n is out.
        ahead = c0 is not None and s.prompt.ready(step + 1)
        if ahead:
            pending = queue(step + 1, c0, hidden)
        is_last = c0 is None or HostSyncs.item(c0) == s.eos
        yield row, is_last
        if is_last:
            return
        if not ahead:
            pending = queue(step + 1, c0, hidden)
