"""Is generation faster than real time here, and what to try when it is not.

Each 80 ms frame reads the talker's weights once and the code predictor's fifteen times, so on
a GPU the frame loop is bound by memory bandwidth: `frame_bytes` counts what one frame reads,
from the model's actual parameters (packed sizes for quantized layers), and `advice` suggests
what reads fewer bytes. Shapes are all that is counted: a lazy model allocates nothing.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from .audio import SAMPLE_RATE, SAMPLES_PER_FRAME

FRAME_MS = 1000 * SAMPLES_PER_FRAME / SAMPLE_RATE  # 80 ms of audio per frame
KINDS = {"custom_voice": "CustomVoice", "voice_design": "VoiceDesign", "base": "Base"}
SIZES = {"0b6": "0.6B", "1b7": "1.7B"}
SMALL_KINDS = ("custom_voice", "base")  # the kinds released at 0.6B too
# (label, convert recipe, convert flags): fewer bytes per frame, in the order to try them.
QUANTIZED = (("8-bit weights", "8bit", "-q"),
             ("a 4-bit talker with an 8-bit code predictor", "mixed", "-q --quant-recipe mixed"))
CPU_NOTE = ("on the CPU, float32 is the fast dtype: MLX's CPU backend has no fast bfloat16 "
            "or quantized matrix products")


def _bytes(*modules: nn.Module) -> int:
    return sum(v.nbytes for m in modules for _, v in tree_flatten(m.parameters()))


def _row(table: nn.Module) -> int:
    """Bytes of one row of an embedding table (float or quantized)."""
    return _bytes(table) // table.weight.shape[0]


def frame_traffic(model) -> dict[str, int]:
    """Weight bytes one frame reads, by part: `talker` (layers, head, text projection, once),
    `code_predictor` (layers and projection per step x 15, each step's own head once) and
    `embedding_rows` (the 16 codec rows fed back and one text row)."""
    talker = model.talker
    cp = talker.code_predictor
    steps = cp.config.num_code_groups - 1
    step = [cp.model, *([cp.small_to_mtp_projection] if "small_to_mtp_projection" in cp else [])]
    step_bytes = _bytes(*step) - sum(_bytes(t) for t in cp.model.codec_embedding)  # tables are rows only
    rows = [talker.model.text_embedding, talker.model.codec_embedding, *cp.model.codec_embedding]
    return {"talker": _bytes(*talker.model.layers, talker.model.norm, talker.codec_head, talker.text_projection),
            "code_predictor": steps * step_bytes + _bytes(*cp.lm_head),
            "embedding_rows": sum(_row(t) for t in rows)}


def frame_bytes(model) -> int:
    """Weight bytes one frame reads (see `frame_traffic`)."""
    return sum(frame_traffic(model).values())


def float_dtype(model) -> mx.Dtype:
    return model.talker.model.norm.weight.dtype


def talker_bits(model) -> int | None:
    """The fewest bits among the talker's quantized decoder layers; None when they are float."""
    bits = [m.bits for layer in model.talker.model.layers for _, m in layer.named_modules()
            if isinstance(m, nn.QuantizedLinear)]
    return min(bits) if bits else None


def recipe_bytes(model, recipe: str) -> int:
    """`frame_bytes` of this model's float source converted with `recipe` (a lazy copy)."""
    from .models.qwen3_tts import Model
    from .quantize import DEFAULT_GROUP_SIZE, quantize_model

    copy = Model(model.config)
    copy.set_dtype(float_dtype(model))
    try:
        quantize_model(copy, recipe, DEFAULT_GROUP_SIZE)
    except ValueError:  # no layer of this (tiny) model divides by the group size
        pass
    return frame_bytes(copy)


def on_cpu() -> bool:
    return mx.default_device() == mx.cpu


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def advice(tts, ms_per_frame: float) -> str | None:
    """One line of what to try when frames take longer than real time (80 ms); None when they do not."""
    if ms_per_frame <= FRAME_MS:
        return None
    config, model = tts.config, tts.model
    kind, size = KINDS.get(tts.kind, tts.kind), SIZES.get(config.tts_model_size, config.tts_model_size)
    source = f"Qwen/Qwen3-TTS-12Hz-{size}-{kind}"
    tips = []
    if on_cpu():
        if talker_bits(model) is not None or float_dtype(model) != mx.float32:
            tips.append("the float checkpoint loaded in float32 (load(..., dtype='float32'), as speak does)")
    else:
        now = frame_bytes(model)
        for label, recipe, flags in QUANTIZED:
            fewer = recipe_bytes(model, recipe)
            if fewer < 0.9 * now:  # one that reads about as much as now would not help
                folder = f"qwen3tts-{size.lower()}-{recipe}"
                tips.append(f"{label}, {_size(fewer)} a frame: python -m mlx_qwen3tts convert "
                            f"--hf-path {source} --mlx-path {folder} {flags}")
    if config.tts_model_size == "1b7" and tts.kind in SMALL_KINDS:
        tips.append(f"the 0.6B model: --model Qwen/Qwen3-TTS-12Hz-0.6B-{kind}")
    line = (f"slower than real time: {ms_per_frame:.0f} ms per {FRAME_MS:.0f} ms frame, "
            f"{_size(frame_bytes(model))} of weights read per frame")
    if on_cpu():
        line += f"; {CPU_NOTE}"
    if not tips:
        return line + "; nothing lighter to try for this model here (writing to a file with --output still works)"
    return line + "; try " + "; then ".join(tips)


def figures(tts, loop_ms: float, total_ms: float | None = None) -> dict:
    """The device report's numbers: bytes per frame, ms per frame, the bandwidth they imply,
    and the advice (judged on `total_ms`, the frame loop plus the codec decode, if given)."""
    parts = frame_traffic(tts.model)
    total = sum(parts.values())
    judged = total_ms if total_ms is not None else loop_ms
    return {"device": "cpu" if on_cpu() else "gpu", "frame_bytes": total, "frame_bytes_parts": parts,
            "loop_ms": loop_ms, "total_ms": total_ms, "real_time": judged <= FRAME_MS,
            "bandwidth_gb_s": total / (loop_ms / 1e3) / 1e9 if loop_ms > 0 else None,
            "advice": advice(tts, judged)}


def _pace(ms: float) -> str:
    if ms <= 0:  # no frame was timed (a random model may stop at once)
        return "not measured"
    if ms <= FRAME_MS:
        return f"{FRAME_MS / ms:.1f}x faster than real time"
    return f"{ms / FRAME_MS:.1f}x slower than real time"


def report(fig: dict, title: str) -> str:
    """`figures` as a few lines of text."""
    p = fig["frame_bytes_parts"]
    lines = [f"device report: {title} ({fig['device']})",
             (f"  weights read per frame  {_size(fig['frame_bytes'])} (talker {_size(p['talker'])}, code predictor "
              f"{_size(p['code_predictor'])} over its 15 steps, embedding rows {_size(p['embedding_rows'])})"),
             (f"  frame loop              {fig['loop_ms']:.1f} ms/frame, {_pace(fig['loop_ms'])} "
              f"({FRAME_MS:.0f} ms/frame)")]
    if fig["bandwidth_gb_s"] is not None:
        lines.append(f"  implied bandwidth       {fig['bandwidth_gb_s']:.1f} GB/s of weights (bytes / frame loop)")
    if fig["total_ms"] is not None:
        lines.append(f"  with the codec decode   {fig['total_ms']:.1f} ms/frame, {_pace(fig['total_ms'])}")
    if fig["advice"]:
        lines.append(f"  advice: {fig['advice']}")
    else:
        lines.append("  advice: none needed, it keeps up" + (f"; {CPU_NOTE}" if fig["device"] == "cpu" else ""))
    return "\n".join(lines)


class RealTimeWatch:
    """Judges a stream's pace once, when `after_s` seconds of audio exist: the advice if it
    falls behind real time. The pace is timed from the first chunk on, so the prompt's
    prefill (and a GPU's first kernel compilations) do not count."""

    def __init__(self, tts, after_s: float = 3.0):
        self.tts, self.after_s = tts, after_s
        self._first: tuple[int, float] | None = None  # (samples, elapsed) at the first chunk
        self.judged = False

    def check(self, samples: int, sample_rate: int, elapsed: float) -> str | None:
        """Called after each chunk with the totals so far; returns the advice at most once."""
        if self.judged:
            return None
        if self._first is None:
            self._first = (samples, elapsed)
            return None
        if samples < self.after_s * sample_rate:
            return None
        self.judged = True
        frames = (samples - self._first[0]) / (sample_rate * FRAME_MS / 1000)
        return advice(self.tts, (elapsed - self._first[1]) * 1000 / frames)
