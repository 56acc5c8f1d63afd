"""The talker: the main LM that reads the text/codec dual track and emits codebook 0."""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn

from ..config import TalkerConfig
from .batched import stack_step
from .code_predictor import CodePredictor
from .layers import DecoderStack, FrameCache

# Compiled frames kept per talker: one per sampler setting in use, the oldest dropped first.
MAX_COMPILED_FRAMES = 4
_TOKENS = itertools.count()


class TextProjection(nn.Module):
    """Maps the 2048-wide text embeddings into the talker's width (Linear, SiLU, Linear)."""

    def __init__(self, text_hidden: int, hidden: int):
        super().__init__()
        self.linear_fc1 = nn.Linear(text_hidden, text_hidden, bias=True)
        self.linear_fc2 = nn.Linear(text_hidden, hidden, bias=True)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_fc2(nn.silu(self.linear_fc1(x)))


class TalkerModel(DecoderStack):
    def __init__(self, config: TalkerConfig):
        super().__init__(config)
        self.text_embedding = nn.Embedding(config.text_vocab_size, config.text_hidden_size)
        self.codec_embedding = nn.Embedding(config.vocab_size, config.hidden_size)


class Talker(nn.Module):
    def __init__(self, config: TalkerConfig):
        super().__init__()
        self.config = config
        self.model = TalkerModel(config)
        self.text_projection = TextProjection(config.text_hidden_size, config.hidden_size)
        self.codec_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.code_predictor = CodePredictor(config.code_predictor, config.hidden_size)
        # Kept outside the module tree: never a parameter, never saved. The token is this
        # talker's for good, so caches of other objects can be keyed by it (an id() is reused).
        self.__dict__["token"] = next(_TOKENS)
        self.__dict__["_frames"] = OrderedDict()

    def embed_text(self, ids: mx.array) -> mx.array:
        """Text-side vectors: every text token, control tokens included, goes through the projection."""
        return self.text_projection(self.model.text_embedding(ids))

    def embed_codec(self, ids: mx.array) -> mx.array:
        return self.model.codec_embedding(ids)

    def embed_frame(self, codes: mx.array) -> mx.array:
        """Sum of the 16 codebook embeddings of frames `codes` (..., 16): the talker's feedback.

        Summed once in float32, as the reference does: sixteen half-precision additions in a
        row would round fifteen times.
        """
        rows = [self.model.codec_embedding(codes[..., 0])]
        rows += [table(codes[..., q + 1]) for q, table in enumerate(self.code_predictor.model.codec_embedding)]
        return mx.stack(rows).astype(mx.float32).sum(axis=0).astype(rows[0].dtype)

    def __call__(self, embeds: mx.array, cache: list | None = None) -> tuple[mx.array, mx.array]:
        """One forward over (B, L, D) input vectors: (codebook-0 logits, final-normed hidden)."""
        h = self.model(embeds, cache)
        return self.codec_head(h), h

    def feed(self, frame: mx.array, text: mx.array, cache: list) -> tuple[mx.array, mx.array]:
        """One step: frame `(B, 16)` fed back with its text-side vector `(D,)`; returns the
        next codebook-0 logits `(B, V)` and their hidden state `(B, 1, D)`."""
        logits, hidden = self((self.embed_frame(frame) + text)[:, None], cache)
        return logits[:, -1], hidden

    def feed_streams(self, frames: mx.array, texts: mx.array, caches: list[list]) -> tuple[mx.array, mx.array]:
        """`feed` for several streams at once: frames `(B, 16)`, their text-side vectors `(B, D)`,
        row i with its own caches `caches[i]`; each row's result is what `feed` gives it alone."""
        hidden = stack_step(self.model, (self.embed_frame(frames) + texts)[:, None], caches)
        return self.codec_head(hidden)[:, -1], hidden

    def predict_frames(self, hidden: mx.array, c0: mx.array, draw: Callable[[mx.array, mx.array], mx.array],
                       keys: mx.array) -> mx.array:
        """`predict_frame` for several streams: hidden `(B, 1, D)`, `c0` `(B,)`, keys `(15, B, 2)`,
        where `draw(logits (B, V), keys (B, 2))` draws each row as its stream would alone.

        Not compiled: a trace would be needed for every batch make-up, and MLX's tracing is
        process-wide, so tracing on the batch's thread would corrupt the graphs other threads
        (a stream's prefill) build meanwhile."""
        cache = [FrameCache(self.config.code_predictor.num_code_groups) for _ in self.code_predictor.model.layers]
        return self.predict_frame(hidden, c0, cache, draw, keys)

    def predict_frame(self, hidden: mx.array, c0: mx.array, cache: list,
                      draw: Callable[[mx.array, mx.array | None], mx.array], keys: mx.array | None) -> mx.array:
        """The frame `(B, 16)` whose codebook 0 is `c0`, from the hidden state that drew it."""
        return self.code_predictor.sample_frame(hidden, c0, self.embed_codec(c0), cache, draw, keys)

    def forced_frame_logits(self, hidden: mx.array, codes: mx.array) -> mx.array:
        """Teacher-forced code-predictor logits `(F, 15, vocab)` for frames `codes` `(F, 16)`
        and the talker hidden states `(F, D)` that drew their codebook 0."""
        return self.code_predictor.forced_logits(hidden, self.embed_codec(codes[:, 0]), codes)

    def compiled_frame(self, draw) -> Callable[[mx.array, mx.array, mx.array], mx.array]:
        """`predict_frame` as one compiled graph, `(hidden, c0, keys) -> (1, 16)`, for sampler `draw`.

        The cache lives inside the graph at its final size, so every frame replays one trace.
        The weights are the graph's inputs, read at every call: new weights need no new trace,
        while a change of structure (quantizing) retraces by itself.
        """
        cached = self._frames
        if draw in cached:
            cached.move_to_end(draw)
            return cached[draw]
        n = self.config.code_predictor.num_code_groups
        talker = weakref.ref(self)  # the talker owns the compiled graph, not the other way round

        def frame(hidden: mx.array, c0: mx.array, keys: mx.array) -> mx.array:
            cache = [FrameCache(n) for _ in talker().code_predictor.model.layers]
            return talker().predict_frame(hidden, c0, cache, draw, keys)

        cached[draw] = fn = mx.compile(frame, inputs=[self.code_predictor, self.model.codec_embedding])
        while len(cached) > MAX_COMPILED_FRAMES:
            cached.popitem(last=False)
        return fn
