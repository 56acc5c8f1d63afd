"""What a Mac runs that this Linux CPU does not by default: the wired limit (faked darwin and
Metal), bfloat16 weights against float32, and the codec's transposed convs."""

from __future__ import annotations

import types

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts import generation
from mlx_qwen3tts.quality import compare, greedy_frames, teacher_forced
from mlx_qwen3tts.codec.conv import conv_transpose1d
from reference import build_checkpoint, requires_reference
from tiny import make_tiny_checkpoint

TEXT = "hello world, this is the first one. And here comes the second sentence."


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv", seed=5)


@pytest.fixture
def fake_metal(monkeypatch):
    """darwin with a Metal GPU, the CPU still the default device: records what is asked."""
    calls = []
    monkeypatch.setattr(generation, "sys", types.SimpleNamespace(platform="darwin"))
    monkeypatch.setattr(mx.metal, "is_available", lambda: True)

    def device_info(d=None):
        calls.append(("device_info", d))
        if d != mx.gpu:  # the CPU's info has no working-set size: the bug this guards against
            return {"device_name": "cpu"}
        return {"max_recommended_working_set_size": 12345}

    def set_wired_limit(limit):
        calls.append(("set_wired_limit", limit))
        return 0 if limit == 12345 else 12345

    monkeypatch.setattr(mx, "device_info", device_info)
    monkeypatch.setattr(mx, "set_wired_limit", set_wired_limit)
    monkeypatch.setattr(mx, "synchronize", lambda s=None: calls.append(("synchronize", s)))
    return calls


def test_the_wired_limit_is_set_once_per_request_and_restored_after_the_stream(folder, fake_metal):
    tts = mlx_qwen3tts.load(folder)
    audio = tts.generate(TEXT, speaker="vivian", seed=0, max_new_tokens=6, max_segment_tokens=25)
    assert len(audio.codes) > 5  # both segments ran
    names = [c[0] for c in fake_metal]
    assert fake_metal[0] == ("device_info", mx.gpu)
    assert [c for c in fake_metal if c[0] == "set_wired_limit"] == [("set_wired_limit", 12345),
                                                                     ("set_wired_limit", 0)]
    restore = names.index("set_wired_limit", names.index("set_wired_limit") + 1)
    # The generation stream (and the GPU) are waited on before the limit goes back.
    synced = [c[1] for c in fake_metal[:restore] if c[0] == "synchronize"]
    assert generation.generation_stream() in synced and mx.gpu in synced


def test_frame_feedback_is_summed_once_in_float32(folder):
    tts = mlx_qwen3tts.load(folder, dtype="bfloat16")
    talker = tts.model.talker
    codes = mx.array(np.random.default_rng(0).integers(0, 2048, (64, 16)).astype(np.int32))
    rows = [talker.model.codec_embedding(codes[:, 0])]
    rows += [t(codes[:, q + 1]) for q, t in enumerate(talker.code_predictor.model.codec_embedding)]
    once = mx.stack(rows).astype(mx.float32).sum(0).astype(mx.bfloat16)
    one_by_one = rows[0]
    for r in rows[1:]:
        one_by_one = one_by_one + r
    ours = talker.embed_frame(codes)
    assert ours.dtype == mx.bfloat16
    assert mx.array_equal(ours, once).item()
    assert mx.mean((one_by_one != once).astype(mx.float32)).item() > 0.1  # the sums differ: the test can fail


def test_bfloat16_follows_float32_over_teacher_forced_frames(folder):
    f32, bf16 = mlx_qwen3tts.load(folder, dtype="float32"), mlx_qwen3tts.load(folder, dtype="bfloat16")
    talker, predictor = [], []
    for text in ("hello world, this is a test", "the quick brown fox jumps"):
        prompt = f32.prepare(text, speaker="vivian").prompt
        codes = greedy_frames(f32, prompt, 24)
        a_talker, a_cp = teacher_forced(f32, prompt, codes)
        b_talker, b_cp = teacher_forced(bf16, bf16.prepare(text, speaker="vivian").prompt, codes)
        talker.append(compare(a_talker, b_talker))
        predictor.append(compare(a_cp, b_cp))
    # bfloat16 keeps 8 bits of mantissa: a small drift (KL about 5e-6 nats here), the same
    # choices almost everywhere (a random tiny model has near ties: 96-100 % here).
    assert np.mean([r["kl"] for r in talker]) < 1e-4 and np.mean([r["top1"] for r in talker]) >= 0.9
    assert np.mean([r["kl"] for r in predictor]) < 1e-4 and np.mean([r["top1"] for r in predictor]) >= 0.9


@requires_reference
def test_the_speaker_encoder_runs_in_float32_under_bfloat16_weights(tmp_path):
    from reference import write_speechlike_wav

    path = build_checkpoint("base", "noproj", "0b6", seed=2)
    wav = write_speechlike_wav(tmp_path / "ref.wav", 3.0)
    bf16 = mlx_qwen3tts.load(path, dtype="bfloat16")
    assert bf16.model.speaker_encoder.fc.weight.dtype == mx.float32
    assert bf16.model.talker.codec_head.weight.dtype == mx.bfloat16
    a = mlx_qwen3tts.load(path, dtype="float32").clone_voice(wav, x_vector_only=True).x_vector
    b = bf16.clone_voice(wav, x_vector_only=True).x_vector
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine > 0.9999, cosine


@pytest.mark.parametrize("stride, kernel", [(2, 2), (8, 16), (5, 10), (3, 6)])
def test_the_transposed_conv_is_the_exact_rewrite_on_every_device(stride, kernel, monkeypatch):
    from mlx_qwen3tts.codec import conv

    x = mx.random.normal((1, 7, 12), key=mx.random.key(stride))
    w = mx.random.normal((5, kernel, 12), key=mx.random.key(kernel))
    native = mx.conv_transpose1d(x, w, stride=stride)
    for on_cpu in (True, False):  # the device no longer picks the op
        monkeypatch.setattr(conv, "_on_cpu", lambda on_cpu=on_cpu: on_cpu)
        np.testing.assert_allclose(np.asarray(conv_transpose1d(x, w, stride)), np.asarray(native), atol=1e-5)
