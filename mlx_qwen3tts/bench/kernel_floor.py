"""Where a frame's time goes: its two halves timed apart, and the kernel floor.

The kernel floor is what the backend allows for one frame: the frame's matrix products and
attention at their real shapes (the talker's layers and head once over its context; the code
predictor's layers and one head for each of its 15 steps, the first with its two positions),
queued as one graph and evaluated with one wait. No norms, activations, sampling or Python: a
lower bound on the frame, and on the CPU, where almost every product is a matrix-vector
product, the time to stream the weights through the memory system.
"""

from __future__ import annotations

import time

import mlx.core as mx
import mlx.nn as nn

from ..generation import FrameStepper
from ..models.talker import Talker


def _linears(module: nn.Module) -> list[nn.Module]:
    return [m for _, m in module.named_modules() if isinstance(m, (nn.Linear, nn.QuantizedLinear))]


def _width(m: nn.Module) -> int:
    # A quantized layer packs 32 // bits weights into each uint32.
    return m.weight.shape[-1] * (32 // m.bits if isinstance(m, nn.QuantizedLinear) else 1)


def _time(fn, reps: int) -> float:
    """Seconds per call of `fn()`: one warm-up, then the fastest of `reps` calls, each waited on.

    The fastest call is the one least disturbed by the rest of the machine, as a floor should be.
    """
    mx.eval(fn())
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - start)
    return best


def _attention(config, queries: int, keys: int, dtype) -> tuple[mx.array, mx.array]:
    """Inputs for one layer's attention of `queries` new positions over `keys` cached ones:
    the queries and the keys (which serve as the values too)."""
    q = mx.random.normal((1, config.num_attention_heads, queries, config.head_dim)).astype(dtype)
    kv = mx.random.normal((1, config.num_key_value_heads, keys, config.head_dim)).astype(dtype)
    return q, kv


def kernel_floor(talker: Talker, reps: int = 5, context: int = 128) -> dict:
    """Milliseconds per frame: the whole frame's kernels, and its code predictor and talker halves.

    `context` is the talker's cache length for the step (prompt plus frames so far).
    """
    cp = talker.code_predictor
    steps = cp.config.num_code_groups - 1
    dtype = talker.model.norm.weight.dtype
    # The talker's text projection runs once per frame too, on the trailing text token.
    talker_layers = _linears(talker.model) + _linears(talker.text_projection) + [talker.codec_head]
    cp_layers = _linears(cp.model) + ([cp.small_to_mtp_projection] if "small_to_mtp_projection" in cp else [])
    widths = {_width(m) for m in talker_layers + cp_layers + list(cp.lm_head)}
    # The code predictor's first step carries two positions (talker state, codebook 0).
    inputs = {(w, rows): mx.random.normal((rows, w)).astype(dtype) for w in widths for rows in (1, 2)}
    talker_attn = _attention(talker.config, 1, context, dtype)
    cp_attn = [_attention(cp.config, 2 if s == 1 else 1, s + 1, dtype) for s in range(1, steps + 1)]
    mx.eval(inputs, talker_attn, cp_attn)

    def products(layers: list[nn.Module], step: int, rows: int = 1) -> list[mx.array]:
        # A different input per step, so that no two steps are the same computation.
        return [m(inputs[_width(m), rows] + step) for m in layers]

    def attention(qkv: tuple[mx.array, mx.array], layers: int, scale: float) -> list[mx.array]:
        q, kv = qkv
        return [mx.fast.scaled_dot_product_attention(q + i, kv, kv, scale=scale) for i in range(layers)]

    def talker_half():
        return (products(talker_layers, 0)
                + attention(talker_attn, len(talker.model.layers), talker.config.head_dim ** -0.5))

    def predictor_half():
        out = []
        for s in range(1, steps + 1):
            out += products(cp_layers, s, 2 if s == 1 else 1) + products([cp.lm_head[s - 1]], s)
            out += attention(cp_attn[s - 1], len(cp.model.layers), cp.config.head_dim ** -0.5)
        return out

    t = _time(talker_half, reps)
    c = _time(predictor_half, reps)
    whole = _time(lambda: talker_half() + predictor_half(), reps)
    return {"kernel_floor_ms": whole * 1e3, "kernel_floor_code_predictor_ms": c * 1e3,
            "kernel_floor_talker_ms": t * 1e3}


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
