"""The lean (compiled, pipelined) frame loop gives the plain loop's codes, with one host read per frame."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from tiny import make_tiny_checkpoint

import mlx_qwen3tts
from mlx_qwen3tts.quantize import quantize_model
from mlx_qwen3tts.generation import HostSyncs, generate_frames
from mlx_qwen3tts.models.layers import FrameCache

TEXT = "hello world, this is a test of the frame loop"
MODES = {
    "sampled": dict(max_new_tokens=24),
    "greedy": dict(temperature=0, subtalker_temperature=0, max_new_tokens=24),
    "sampled_no_penalty": dict(repetition_penalty=1.0, max_new_tokens=24),
    "greedy_penalty": dict(temperature=0, subtalker_temperature=0, repetition_penalty=1.5, max_new_tokens=24),
    "top_p": dict(top_p=0.8, subtalker_top_p=0.7, subtalker_top_k=0, max_new_tokens=24),
}


def _load(tmp_path_factory, kind: str, dtype: mx.Dtype = mx.float32):
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp(kind), kind=kind, dtype=dtype)
    return mlx_qwen3tts.load(folder, dtype=None)  # the checkpoint's own dtype, on the CPU too


@pytest.fixture(scope="module")
def custom_voice(tmp_path_factory):
    return _load(tmp_path_factory, "custom_voice")


@pytest.fixture(scope="module")
def voice_design(tmp_path_factory):
    return _load(tmp_path_factory, "voice_design")


def run(tts, compiled: bool, seed: int, request: dict, **sampling) -> tuple[np.ndarray, list[bool], int]:
    """Codes, the is_last flags and the host syncs of one generation."""
    req = tts.prepare(TEXT, **request)
    before = HostSyncs.count
    out = [(np.asarray(f), last) for f, last in
           generate_frames(tts.model.talker, req.prompt, tts.sampling.resolve(**sampling), seed, compiled=compiled)]
    codes = np.stack([f for f, _ in out]) if out else np.zeros((0, 16), np.int32)
    return codes, [last for _, last in out], HostSyncs.count - before


def assert_same(tts, seed: int, request: dict, **sampling) -> np.ndarray:
    plain, plain_last, _ = run(tts, False, seed, request, **sampling)
    lean, lean_last, _ = run(tts, True, seed, request, **sampling)
    assert lean.dtype == plain.dtype == np.int32
    np.testing.assert_array_equal(lean, plain)
    assert lean_last == plain_last and lean_last[-1] and not any(lean_last[:-1])
    return lean


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("seed", [0, 7])
def test_custom_voice_lean_equals_plain(custom_voice, mode, seed):
    codes = assert_same(custom_voice, seed, dict(speaker="vivian", language="english"), **MODES[mode])
    assert codes.shape == (23, 16)


@pytest.mark.parametrize("mode", ["sampled", "greedy", "greedy_penalty"])
def test_voice_design_lean_equals_plain(voice_design, mode):
    assert_same(voice_design, 3, dict(instruct="A calm voice.", non_streaming_mode=False), **MODES[mode])


@pytest.mark.parametrize("mode", ["sampled", "greedy"])
def test_bfloat16_lean_equals_plain(tmp_path_factory, mode):
    # Fused kernels must round their bfloat16 intermediates as the separate ops do.
    tts = _load(tmp_path_factory, "custom_voice", mx.bfloat16)
    assert tts.model.talker.codec_head.weight.dtype == mx.bfloat16
    for seed in range(3):
        assert_same(tts, seed, dict(speaker="vivian"), **MODES[mode])


def test_seeds_differ(custom_voice):
    # Equality must come from the same random stream, not from sampling being ignored.
    a, _, _ = run(custom_voice, True, 1, dict(speaker="vivian"), max_new_tokens=12)
    b, _, _ = run(custom_voice, True, 2, dict(speaker="vivian"), max_new_tokens=12)
    assert (a != b).any()


@pytest.fixture
def eos_prone(tmp_path_factory):
    """A model whose EOS logit is raised, so sampled runs stop early at seed-dependent frames."""
    tts = _load(tmp_path_factory, "custom_voice")
    w = tts.model.talker.codec_head.weight
    head = nn.Linear(w.shape[1], w.shape[0], bias=True)
    head.weight, head.bias = w, mx.zeros((w.shape[0],)).at[tts.config.talker.codec_eos_token_id].add(3.0)
    tts.model.talker.codec_head = head
    return tts


def test_early_eos_same_frame(eos_prone):
    lengths = {len(assert_same(eos_prone, seed, dict(speaker="vivian"), max_new_tokens=40)) for seed in range(4)}
    assert min(lengths) < 39 and len(lengths) > 1, lengths


def test_first_draw_budget_edges(custom_voice):
    for budget in (1, 2, 3):
        codes = assert_same(custom_voice, 0, dict(speaker="vivian"), max_new_tokens=budget) if budget > 1 else \
            run(custom_voice, True, 0, dict(speaker="vivian"), max_new_tokens=budget)[0]
        assert len(codes) == budget - 1


def test_one_host_sync_per_frame(custom_voice):
    n = 20
    _, _, lean = run(custom_voice, True, 0, dict(speaker="vivian"), max_new_tokens=n + 1)
    _, _, plain = run(custom_voice, False, 0, dict(speaker="vivian"), max_new_tokens=n + 1)
    # The prefill's draw is read once; each frame but the budget's last reads its next draw.
    assert lean == 1 + (n - 1)
    assert plain == 2 + 2 * n - 1  # eval and read per frame: the counter sees every one


def test_new_weights_retrace_the_compiled_frame(tmp_path_factory):
    tts = _load(tmp_path_factory, "custom_voice")
    before = run(tts, True, 0, dict(speaker="vivian"), max_new_tokens=10)[0]
    heads = tts.model.talker.code_predictor.lm_head
    for head in heads:
        head.weight = -head.weight  # the compiled frame must not keep the old weights
    after = assert_same(tts, 0, dict(speaker="vivian"), max_new_tokens=10)
    assert (after[:, 1:] != before[:, 1:]).any()


def test_quantized_lean_equals_plain(tmp_path_factory):
    tts = _load(tmp_path_factory, "custom_voice")
    block = quantize_model(tts.model, "4bit", 64)  # what convert writes and load applies
    assert any(k.startswith("talker.") for k in block)
    mx.eval(tts.model.parameters())
    assert isinstance(tts.model.talker.model.layers[0].mlp.down_proj, nn.QuantizedLinear)
    assert_same(tts, 0, dict(speaker="vivian"), max_new_tokens=10)


def test_stream_ends_on_the_last_frame(custom_voice):
    chunks = list(custom_voice.stream(TEXT, speaker="vivian", seed=0, max_new_tokens=12))
    assert chunks[-1].is_last and chunks[-1].frames == 11 and not any(c.is_last for c in chunks[:-1])
    codes = custom_voice.generate_codes(TEXT, speaker="vivian", seed=0, max_new_tokens=12)
    np.testing.assert_array_equal(codes, run(custom_voice, False, 0, dict(speaker="vivian"), max_new_tokens=12)[0])


def test_frame_cache_is_fixed_size():
    cache = FrameCache(3)
    k = mx.ones((1, 2, 2, 4))
    keys, _ = cache.update_and_fetch(k, k)
    assert keys.shape == (1, 2, 2, 4) and cache.keys.shape == (1, 2, 3, 4) and cache.make_mask(2) == "causal"
    cache.update_and_fetch(k[:, :, :1], k[:, :, :1])
    with pytest.raises(ValueError, match="3 positions"):
        cache.update_and_fetch(k[:, :, :1], k[:, :, :1])


def test_compiled_frames_are_kept_for_at_most_four_sampler_settings(custom_voice):
    """Each sampler setting compiles its own frame; a long-lived server sees many settings."""
    from mlx_qwen3tts.models.talker import MAX_COMPILED_FRAMES

    talker = custom_voice.model.talker
    for i in range(MAX_COMPILED_FRAMES + 4):
        custom_voice.generate_codes(TEXT, speaker="vivian", seed=0, max_new_tokens=3,
                                    subtalker_temperature=0.5 + 0.05 * i)
        assert len(talker._frames) <= MAX_COMPILED_FRAMES
    # the newest setting is the one kept last; the oldest are gone
    assert [d.temperature for d in talker._frames][-1] == pytest.approx(0.5 + 0.05 * (MAX_COMPILED_FRAMES + 3))
