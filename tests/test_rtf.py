"""Weight bytes per frame against a hand count, and the advice for slow and fast figures.

Real-size models are built lazily: their parameters are never evaluated, so counting their
shapes (float, bfloat16 or quantized) allocates nothing.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import pytest

from mlx_qwen3tts import rtf
from mlx_qwen3tts.testing import model_config
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.models.qwen3_tts import Model
from mlx_qwen3tts.quantize import quantize_model
from mlx_qwen3tts.sampling import SamplingConfig
from mlx_qwen3tts.tts import TTS

GROUP = 64


def lazy_model(size: str, kind: str = "custom_voice", dtype=mx.float32) -> Model:
    model = Model(ModelConfig.from_dict(model_config(size, kind)))
    model.set_dtype(dtype)
    return model


def as_tts(model: Model) -> TTS:
    return TTS(model, None, SamplingConfig())


def linear(n_in: int, n_out: int, size: int, bits: int | None, bias: bool = False) -> int:
    """Bytes of one Linear layer: float, or packed weights plus a scale and a bias per group."""
    if bits is None:
        return (n_in * n_out + bias * n_out) * size
    return n_in * n_out * bits // 8 + 2 * n_out * (n_in // GROUP) * size + bias * n_out * size


def hand_count(size_name: str, size: int, bits: int | None = None) -> dict[str, int]:
    """The per-frame bytes from the config's numbers alone (`bits`: every Linear quantized)."""
    raw = model_config(size_name, "custom_voice")["talker_config"]
    cp = raw["code_predictor_config"]

    def layer(c: dict) -> int:
        d, i, h, k, hd = (c[n] for n in ("hidden_size", "intermediate_size", "num_attention_heads",
                                          "num_key_value_heads", "head_dim"))
        products = (linear(d, h * hd, size, bits) + 2 * linear(d, k * hd, size, bits)
                    + linear(h * hd, d, size, bits) + 2 * linear(d, i, size, bits) + linear(i, d, size, bits))
        return products + (2 * hd + 2 * d) * size  # q/k norms, two layer norms

    d, t, dc = raw["hidden_size"], raw["text_hidden_size"], cp["hidden_size"]
    talker = (raw["num_hidden_layers"] * layer(raw) + d * size + linear(d, raw["vocab_size"], size, bits)
              + linear(t, t, size, bits, bias=True) + linear(t, d, size, bits, bias=True))
    step = cp["num_hidden_layers"] * layer(cp) + dc * size
    if dc != d:
        step += linear(d, dc, size, bits, bias=True)
    heads = 15 * linear(dc, cp["vocab_size"], size, bits)
    return {"talker": talker, "code_predictor": 15 * step + heads, "embedding_rows": (t + 16 * d) * size}


@pytest.mark.parametrize("size_name", ["tiny", "0.6b", "1.7b"])
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_float_bytes_match_the_hand_count(size_name, dtype):
    model = lazy_model(size_name, dtype=dtype)
    assert rtf.frame_traffic(model) == hand_count(size_name, dtype.size)
    assert rtf.frame_bytes(model) == sum(hand_count(size_name, dtype.size).values())


def test_audit_figures():
    # The audit's estimates for bfloat16: about 3.3 GB a frame for 0.6B, 5.3 GB for 1.7B.
    assert rtf.frame_bytes(lazy_model("0.6b", dtype=mx.bfloat16)) / 1e9 == pytest.approx(3.32, abs=0.01)
    assert rtf.frame_bytes(lazy_model("1.7b", dtype=mx.bfloat16)) / 1e9 == pytest.approx(5.33, abs=0.01)


@pytest.mark.parametrize("size_name", ["0.6b", "1.7b"])
@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_bytes_are_the_packed_sizes(size_name, bits):
    model = lazy_model(size_name, dtype=mx.bfloat16)
    nn.quantize(model.talker, group_size=GROUP, bits=bits, class_predicate=lambda _, m: isinstance(m, nn.Linear))
    assert rtf.talker_bits(model) == bits
    assert rtf.frame_traffic(model) == hand_count(size_name, 2, bits)


def test_recipe_bytes_count_a_lazy_conversion():
    model = lazy_model("0.6b", dtype=mx.bfloat16)
    copy = lazy_model("0.6b", dtype=mx.bfloat16)
    quantize_model(copy, "8bit", GROUP)
    assert rtf.recipe_bytes(model, "8bit") == rtf.frame_bytes(copy)
    # The 4bit recipe leaves the code predictor in float: it reads more than 8-bit everywhere.
    assert rtf.recipe_bytes(model, "mixed") < rtf.recipe_bytes(model, "8bit") < rtf.recipe_bytes(model, "4bit")
    assert rtf.talker_bits(model) is None and rtf.talker_bits(copy) == 8


def test_fast_figures_get_no_advice():
    tts = as_tts(lazy_model("1.7b", dtype=mx.bfloat16))
    assert rtf.advice(tts, 79.0) is None
    assert rtf.advice(tts, rtf.FRAME_MS) is None


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(rtf, "on_cpu", lambda: False)


def test_gpu_advice_for_a_float_17b_lists_all_three_in_order(gpu):
    text = rtf.advice(as_tts(lazy_model("1.7b", dtype=mx.bfloat16)), 120.0)
    assert text.startswith("slower than real time: 120 ms per 80 ms frame, 5.33 GB")
    order = [text.index("8-bit weights"), text.index("4-bit talker"), text.index("the 0.6B model")]
    assert order == sorted(order)
    assert "convert --hf-path Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice --mlx-path qwen3tts-1.7b-8bit -q" in text
    assert "-q --quant-recipe mixed" in text
    assert "--model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice" in text
    assert "float32" not in text and "\n" not in text


def test_gpu_advice_never_offers_what_is_loaded(gpu):
    small = rtf.advice(as_tts(lazy_model("0.6b", dtype=mx.bfloat16)), 120.0)
    assert "8-bit weights" in small and "0.6B model" not in small
    # No 0.6B VoiceDesign was released.
    design = rtf.advice(as_tts(lazy_model("1.7b", "voice_design", mx.bfloat16)), 120.0)
    assert "8-bit weights" in design and "0.6B" not in design
    eight = lazy_model("1.7b", dtype=mx.bfloat16)
    quantize_model(eight, "8bit", GROUP)
    text = rtf.advice(as_tts(eight), 120.0)
    assert "8-bit weights" not in text and "4-bit talker" in text and "0.6B model" in text
    mixed = lazy_model("0.6b", dtype=mx.bfloat16)
    quantize_model(mixed, "mixed", GROUP)
    assert "nothing lighter to try" in rtf.advice(as_tts(mixed), 120.0)


def test_cpu_advice_says_float32_and_never_quantize():
    bf16 = rtf.advice(as_tts(lazy_model("1.7b", dtype=mx.bfloat16)), 400.0)
    assert "float32 is the fast dtype" in bf16 and "dtype='float32'" in bf16
    assert "convert" not in bf16 and "the 0.6B model" in bf16
    f32 = rtf.advice(as_tts(lazy_model("0.6b")), 400.0)
    assert "float32 is the fast dtype" in f32 and "nothing lighter to try" in f32 and "dtype='float32'" not in f32


def test_figures_and_report():
    tts = as_tts(lazy_model("0.6b"))
    fig = rtf.figures(tts, 400.0, 500.0)
    assert fig["frame_bytes"] == rtf.frame_bytes(tts.model)
    assert fig["bandwidth_gb_s"] == pytest.approx(fig["frame_bytes"] / 0.4 / 1e9)
    assert fig["real_time"] is False and "500 ms per 80 ms frame" in fig["advice"]
    text = rtf.report(fig, "0.6B float32")
    assert "6.64 GB" in text and "5.0x slower than real time" in text and "16.6 GB/s" in text
    fast = rtf.figures(tts, 40.0, 60.0)
    assert fast["real_time"] is True and fast["advice"] is None
    assert "advice: none needed" in rtf.report(fast, "0.6B float32")
    # A run whose model stopped at once has no frame loop to time: reported, not divided by.
    none = rtf.figures(tts, 0.0, 0.0)
    assert none["bandwidth_gb_s"] is None and "not measured" in rtf.report(none, "0.6B float32")


def test_watch_judges_once_from_the_first_chunk_on():
    tts = as_tts(lazy_model("0.6b"))
    frame = 1920
    fast = rtf.RealTimeWatch(tts, after_s=1.0)
    # A slow first chunk (prefill) does not count; 40 ms a frame afterwards keeps up.
    assert fast.check(frame, 24000, 5.0) is None
    assert [fast.check(frame * n, 24000, 5.0 + 0.04 * (n - 1)) for n in range(2, 40)] == [None] * 38
    assert fast.judged
    slow = rtf.RealTimeWatch(tts, after_s=1.0)
    tips = [slow.check(frame * n, 24000, 0.2 * n) for n in range(1, 40)]
    assert [t for t in tips if t] == [tips[12]]  # judged once, at 1 s (13 frames)
    assert "200 ms per 80 ms frame" in tips[12]
