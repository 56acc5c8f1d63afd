"""The one generation loop: prompt vectors in, one 16-code frame out per step.

Every mode (preset speaker, voice design, cloning) reaches this loop; they differ only in the
prompt vectors. Each step runs the code predictor for the frame whose codebook 0 was just
drawn, feeds the frame back into the talker and draws the next codebook 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import mlx.core as mx
from mlx_lm.models.cache import KVCache

from .config import SamplingConfig
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


def generate_frames(talker: Talker, prompt: PromptVectors, sampling: SamplingConfig,
                    seed: int | None = None) -> Iterator[tuple[mx.array, bool]]:
    """Yields `(frame, is_last)` per frame, `frame` a (16,) int32 array, until EOS or
    `max_new_tokens` codebook-0 draws.

    As in the reference, the last of `max_new_tokens` draws never gets its residual codes,
    so at most `max_new_tokens - 1` frames come out. `is_last` is known as the frame is
    yielded: the next codebook-0 draw is made in the same step.
    """
    cfg = talker.config
    n_groups = cfg.code_predictor.num_code_groups
    eos = cfg.codec_eos_token_id
    processor = TalkerLogitsProcessor(cfg.vocab_size, eos, cfg.codebook_size, sampling.repetition_penalty)
    draw = Sampler(sampling.do_sample, sampling.temperature, sampling.top_k, sampling.top_p)
    draw_cp = Sampler(sampling.subtalker_dosample, sampling.subtalker_temperature,
                      sampling.subtalker_top_k, sampling.subtalker_top_p)
    key = mx.random.key(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
    cache = [KVCache() for _ in talker.model.layers]
    cp_cache = [KVCache() for _ in talker.code_predictor.model.layers]

    def next_keys():
        nonlocal key
        key, k0, k1 = mx.random.split(key, 3)
        return k0, mx.random.split(k1, n_groups - 1)

    logits, hidden = talker(prompt.prefill, cache)
    k0, kcp = next_keys()
    c0 = draw(processor(logits[:, -1]), k0)
    hidden = hidden[:, -1:]
    mx.eval(c0, hidden)
    last_step = sampling.max_new_tokens - 1  # that draw gets no residual codes
    if c0.item() == eos or last_step <= 0:
        return
    for step in range(last_step):
        frame = predict_frame(talker, hidden, c0, cp_cache, draw_cp, kcp)
        feed = talker.embed_frame(frame) + prompt.text_at(step)
        logits, hidden = talker(feed[:, None], cache)
        processor.update(c0)
        k0, kcp = next_keys()
        c0 = draw(processor(logits[:, -1]), k0)
        mx.eval(frame, c0, hidden)
        is_last = step + 1 == last_step or c0.item() == eos
        yield frame[0], is_last
        if is_last:
            return
