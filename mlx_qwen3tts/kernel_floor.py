"""Where a frame's time goes: its two halves timed apart, and the kernel floor.

The kernel floor is one frame's matmuls and attention, compiled and run back to back. With fixed inputs, a frame is the code predictor's 15 greedy steps and one talker step
against the cache the prompt left. Each is one compiled graph; N copies are queued before
a single wait, so nothing but the backend's kernels is timed: no Python sampling, no syncs.
"""

from __future__ import annotations

import time

import mlx.core as mx
from mlx_lm.models.cache import KVCache

from .generation import FrameStepper, PromptVectors, compiled_frame
from .models.talker import Talker
from .sampling import Sampler


class PrefixCache:
    """The cache the prefill left, attended to with one new position that is not kept."""

    def __init__(self, keys: mx.array, values: mx.array):
        self.keys, self.values, self.offset = keys, values, keys.shape[2]

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        return mx.concatenate([self.keys, keys], axis=2), mx.concatenate([self.values, values], axis=2)

    def make_mask(self, n: int, **_) -> None:
        return None


def _time(fn, args: tuple, reps: int) -> float:
    """Seconds per call of `fn(*args)`: one warm-up, then `reps` calls queued and waited on once."""
    mx.eval(fn(*args))
    start = time.perf_counter()
    outs = []
    for _ in range(reps):
        outs.append(fn(*args))
        mx.async_eval(outs[-1])
    mx.eval(outs)
    return (time.perf_counter() - start) / reps


def kernel_floor(talker: Talker, prompt: PromptVectors, reps: int = 5) -> dict:
    """Milliseconds per frame: the whole frame, and its code predictor and talker halves."""
    cache = [KVCache() for _ in talker.model.layers]
    logits, hidden = talker(prompt.prefill, cache)
    prefix = [(c.keys[..., :c.offset, :], c.values[..., :c.offset, :]) for c in cache]
    hidden, c0 = hidden[:, -1:], mx.argmax(logits[:, -1], axis=-1).astype(mx.int32)
    keys = mx.zeros((talker.config.code_predictor.num_code_groups - 1, 2), mx.uint32)  # greedy: unused
    text = prompt.text_at(0)
    mx.eval(prefix, hidden, c0, text)
    predict = compiled_frame(talker, Sampler(do_sample=False))

    def step(frame: mx.array) -> tuple[mx.array, mx.array]:
        feed = talker.embed_frame(frame) + text
        logits, h = talker(feed[:, None], [PrefixCache(k, v) for k, v in prefix])
        return mx.argmax(logits[:, -1], axis=-1).astype(mx.int32), h

    talker_step = mx.compile(step)

    @mx.compile
    def whole(hidden: mx.array, c0: mx.array, keys: mx.array):
        frame = predict(hidden, c0, keys)
        return (frame, *step(frame))

    frame = predict(hidden, c0, keys)
    mx.eval(frame)
    return {"kernel_floor_ms": _time(whole, (hidden, c0, keys), reps) * 1e3,
            "kernel_floor_code_predictor_ms": _time(predict, (hidden, c0, keys), reps) * 1e3,
            "kernel_floor_talker_ms": _time(talker_step, (frame,), reps) * 1e3}


def time_halves(tts, text: str, kwargs: dict, frames: int) -> tuple[float, float]:
    """Seconds per frame in the talker step and in the code predictor, each waited on apart."""
    request = tts.prepare(text, **kwargs)
    s = FrameStepper(tts.model.talker, request.prompt, request.sampling, request.seed)
    c0, hidden = s.prefill()
    mx.eval(c0, hidden)
    talker = predictor = 0.0
    for step in range(frames):
        start = time.perf_counter()
        frame = s.code_predictor(hidden, c0)
        mx.eval(frame)
        mid = time.perf_counter()
        c0, hidden = s.talker_step(frame, step)
        mx.eval(c0, hidden)
        predictor, talker = predictor + mid - start, talker + time.perf_counter() - mid
    return talker / frames, predictor / frames
