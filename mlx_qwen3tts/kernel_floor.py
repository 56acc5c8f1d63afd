"""Where a frame's time goes: its two halves timed apart, and the kernel floor.

The kernel floor is what the backend allows for one frame: the frame's matrix products
alone (the talker's layers and head once, the code predictor's layers and one head for each
of its 15 steps), queued as one graph and evaluated with one wait. No attention, norms,
sampling or Python: a lower bound on the frame, and on the CPU, where every product is a
matrix-vector product, the time to stream the weights through the memory system.
"""

from __future__ import annotations

import time

import mlx.core as mx
import mlx.nn as nn

from .generation import FrameStepper
from .models.talker import Talker


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


def kernel_floor(talker: Talker, reps: int = 5) -> dict:
    """Milliseconds per frame: the whole frame's products, and its code predictor and talker halves."""
    cp = talker.code_predictor
    steps = cp.config.num_code_groups - 1
    dtype = talker.model.norm.weight.dtype
    # The talker's text projection runs once per frame too, on the trailing text token.
    talker_layers = _linears(talker.model) + _linears(talker.text_projection) + [talker.codec_head]
    cp_layers = _linears(cp.model) + ([cp.small_to_mtp_projection] if "small_to_mtp_projection" in cp else [])
    widths = {_width(m) for m in talker_layers + cp_layers + list(cp.lm_head)}
    inputs = {w: mx.random.normal((1, w)).astype(dtype) for w in widths}
    mx.eval(inputs)

    def products(layers: list[nn.Module], step: int) -> list[mx.array]:
        # A different input per step, so that no two steps are the same computation.
        return [m(inputs[_width(m)] + step) for m in layers]

    def talker_half():
        return products(talker_layers, 0)

    def predictor_half():
        return [y for s in range(steps) for y in products(cp_layers + [cp.lm_head[s]], s + 1)]

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
