"""The one generation loop: prompt vectors in, one 16-code frame out per step.

Every mode (preset speaker, voice design, cloning) reaches this loop; they differ only in the
prompt vectors. Each step runs the code predictor for the frame whose codebook 0 was just
drawn, feeds the frame back into the talker and draws the next codebook 0.

The lean path (the default) runs the code predictor's 15 steps, sampling included, as one
compiled graph, queues step n+1 with `mx.async_eval` before reading step n, and reads one
scalar per frame. The plain path (`compiled=False`) is the step-by-step form it must equal.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models.cache import KVCache

from .sampling import SamplingConfig
from .models.layers import FrameCache
from .models.talker import Talker
from .prompt import NONE, REF_FRAME, SPEAKER, PromptLayout
from .sampling import Sampler, TalkerLogitsProcessor


@dataclass
class PromptVectors:
    """What the loop consumes: prefill vectors, the trailing text stream and the pad vector."""

    prefill: mx.array  # (1, L, D)
    trailing: mx.array  # (T, D)
    tts_pad: mx.array  # (D,)

    def text_at(self, step: int) -> mx.array:
        return self.trailing[step] if step < self.trailing.shape[0] else self.tts_pad


def embed_layout(talker: Talker, layout: PromptLayout, pad_id: int, speaker: mx.array | None = None,
                 ref_frames: mx.array | None = None) -> PromptVectors:
    """Sums each position's text-side and codec-side vectors (either side may be absent).

    `speaker` fills the SPEAKER slot; `ref_frames` (M, D), the summed codebook embeddings of
    the reference frames (`talker.embed_frame`), fill the REF_FRAME slots.
    """
    text = mx.array(layout.text)
    codec = mx.array(layout.codec)
    tx = mx.where((text >= 0)[:, None], talker.embed_text(mx.maximum(text, 0)), 0.0)
    cx = mx.where((codec >= 0)[:, None], talker.embed_codec(mx.maximum(codec, 0)), 0.0)
    if SPEAKER in layout.codec:
        if speaker is None:
            raise ValueError("this prompt needs a speaker vector")
        cx = mx.where((codec == SPEAKER)[:, None], speaker.astype(cx.dtype)[None], cx)
    if REF_FRAME in layout.codec:
        start, count = layout.codec.index(REF_FRAME), layout.codec.count(REF_FRAME)
        if ref_frames is None or ref_frames.shape[0] != count:
            raise ValueError(f"this prompt needs {count} reference frames")
        cx = mx.concatenate([cx[:start], ref_frames.astype(cx.dtype), cx[start + count:]], axis=0)
    ids = mx.array(list(layout.trailing) + [pad_id])
    trailing = talker.embed_text(ids)
    return PromptVectors((tx + cx)[None], trailing[:-1], trailing[-1])


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


# Generation gets its own stream, so the codec decode a consumer queues on the default stream
# is not held behind the frame queued ahead. MLX streams belong to the thread that made them,
# and apps generate from worker threads: one stream per thread.
_streams = threading.local()


def _generation_stream() -> mx.Stream:
    stream = getattr(_streams, "stream", None)
    if stream is None:
        stream = _streams.stream = mx.new_stream(mx.default_device())
    return stream


@contextmanager
def wired_limit():
    """On Apple GPUs, keeps the weights wired in memory while generating; a no-op elsewhere."""
    metal = getattr(mx, "metal", None)
    if sys.platform != "darwin" or metal is None or not metal.is_available():
        yield
        return
    info = mx.device_info() if hasattr(mx, "device_info") else metal.device_info()
    old = mx.set_wired_limit(info["max_recommended_working_set_size"])
    try:
        yield
    finally:
        mx.synchronize()
        mx.set_wired_limit(old)


def _reset(cache: list[KVCache]) -> None:
    # Reusing the buffers keeps the per-frame cache free of allocations.
    for c in cache:
        c.offset = 0


def predict_frame(talker: Talker, hidden: mx.array, c0: mx.array, cache: list[KVCache],
                  sampler: Sampler, keys: mx.array | None) -> mx.array:
    """Codebooks 1..15 for one frame from the talker's hidden state and codebook 0: (1, 16)."""
    cp = talker.code_predictor
    _reset(cache)
    x = mx.concatenate([hidden, talker.embed_codec(c0)[:, None]], axis=1)
    codes = [c0]
    for step in range(1, cp.config.num_code_groups):
        token = sampler(cp(x, step, cache), None if keys is None else keys[step - 1])
        codes.append(token)
        x = cp.model.codec_embedding[step - 1](token)[:, None]
    return mx.stack(codes, axis=-1)


def compiled_frame(talker: Talker, sampler: Sampler) -> Callable[[mx.array, mx.array, mx.array], mx.array]:
    """`predict_frame` as one compiled graph: `(hidden, c0, keys) -> (1, 16)`.

    The cache lives inside the graph at its final size, so every frame replays one trace.
    Kept per talker and sampler; a change of weights (quantizing, a dtype cast) retraces.
    """
    cp = talker.code_predictor
    weights = tuple(id(v) for _, v in tree_flatten(talker.parameters()))
    cached = talker.__dict__.setdefault("_frame_fns", {})
    if cached.get("weights") != weights:
        cached.clear()
        cached["weights"] = weights
    if sampler in cached:
        return cached[sampler]
    n = cp.config.num_code_groups

    def frame(hidden: mx.array, c0: mx.array, keys: mx.array) -> mx.array:
        cache = [FrameCache(n) for _ in cp.model.layers]
        return predict_frame(talker, hidden, c0, cache, sampler, keys)

    cached[sampler] = fn = mx.compile(frame)
    return fn


class FrameStepper:
    """The state of one generation and its two halves per frame (the bench times them apart)."""

    def __init__(self, talker: Talker, prompt: PromptVectors, sampling: SamplingConfig,
                 seed: int | None = None, compiled: bool = True):
        cfg = talker.config
        self.talker, self.prompt = talker, prompt
        self.n_groups = cfg.code_predictor.num_code_groups
        self.eos = cfg.codec_eos_token_id
        self.processor = TalkerLogitsProcessor(cfg.vocab_size, self.eos, cfg.codebook_size,
                                               sampling.repetition_penalty)
        self.draw = Sampler(sampling.do_sample, sampling.temperature, sampling.top_k, sampling.top_p)
        draw_cp = Sampler(sampling.subtalker_dosample, sampling.subtalker_temperature,
                          sampling.subtalker_top_k, sampling.subtalker_top_p)
        self.key = mx.random.key(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        self.cache = [KVCache() for _ in talker.model.layers]
        if compiled:
            self.predict = compiled_frame(talker, draw_cp)
        else:
            cp_cache = [KVCache() for _ in talker.code_predictor.model.layers]
            self.predict = lambda h, c0, keys: predict_frame(talker, h, c0, cp_cache, draw_cp, keys)
        self.kcp = None  # the code predictor's keys for the frame to come

    def _next_keys(self) -> mx.array:
        self.key, k0, k1 = mx.random.split(self.key, 3)
        self.kcp = mx.random.split(k1, self.n_groups - 1)
        return k0

    def prefill(self) -> tuple[mx.array, mx.array]:
        """Runs the prompt; returns the first codebook-0 draw (1,) and its hidden state (1, 1, D)."""
        logits, hidden = self.talker(self.prompt.prefill, self.cache)
        c0 = self.draw(self.processor(logits[:, -1]), self._next_keys())
        return c0, hidden[:, -1:]

    def code_predictor(self, hidden: mx.array, c0: mx.array) -> mx.array:
        """The frame (1, 16) whose codebook 0 is `c0`."""
        return self.predict(hidden, c0, self.kcp)

    def talker_step(self, frame: mx.array, step: int) -> tuple[mx.array, mx.array]:
        """Feeds frame `step` back; returns the next codebook-0 draw and its hidden state."""
        feed = self.talker.embed_frame(frame) + self.prompt.text_at(step)
        logits, hidden = self.talker(feed[:, None], self.cache)
        self.processor.update(frame[:, 0])
        return self.draw(self.processor(logits[:, -1]), self._next_keys()), hidden


def generate_frames(talker: Talker, prompt: PromptVectors, sampling: SamplingConfig,
                    seed: int | None = None, compiled: bool = True) -> Iterator[tuple[mx.array, bool]]:
    """Yields `(frame, is_last)` per frame, `frame` a (16,) int32 array, until EOS or
    `max_new_tokens` codebook-0 draws.

    As in the reference, the last of `max_new_tokens` draws never gets its residual codes,
    so at most `max_new_tokens - 1` frames come out. `is_last` is known as the frame is
    yielded: the next codebook-0 draw is made in the same step. `compiled=False` runs the
    plain step-by-step loop (same codes for the same seed, more host round trips).
    """
    stepper = FrameStepper(talker, prompt, sampling, seed, compiled)
    loop = _lean_frames if compiled else _plain_frames
    with wired_limit():
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
    stream = _generation_stream()

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
        if c0 is not None:
            # Frame n+1 goes into the queue before frame n is read: the device never waits on Python.
            pending = queue(step + 1, c0, hidden)
        is_last = c0 is None or HostSyncs.item(c0) == s.eos
        yield row, is_last
        if is_last:
            return
