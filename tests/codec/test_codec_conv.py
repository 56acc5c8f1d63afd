"""Causal convs and the decoder's conv blocks: fast rewrites, streaming and causality."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from codec_helpers import CHUNKS, max_diff, randomize, stream

from mlx_qwen3tts.codec.blocks import ConvNeXtBlock, ResidualUnit, SnakeBeta, VocoderBlock
from mlx_qwen3tts.codec.conv import (
    CausalConv1d,
    CausalConvTranspose1d,
    conv1d,
    conv1d_depthwise,
    conv1d_taps,
    conv_transpose1d,
    conv_transpose1d_matmul,
)


def _normal(*shape: int, seed: int = 0) -> mx.array:
    return mx.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


# ----------------------------------------------------------------- rewrites == native ops

@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 3, 9])
@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_conv_taps_equals_native(kernel, stride, dilation):
    x, w = _normal(2, 90, 6), _normal(5, kernel, 6, seed=1)
    ref = mx.conv1d(x, w, stride=stride, dilation=dilation)
    assert max_diff(conv1d_taps(x, w, stride, dilation), ref) < 1e-5
    assert max_diff(conv1d(x, w, stride, dilation), ref) < 1e-5


@pytest.mark.parametrize("stride,dilation", [(1, 1), (1, 3), (2, 1), (3, 2)])
def test_conv_depthwise_equals_native(stride, dilation):
    x, w = _normal(2, 50, 8), _normal(8, 7, 1, seed=1)
    ref = mx.conv1d(x, w, stride=stride, dilation=dilation, groups=8)
    assert max_diff(conv1d_depthwise(x, w, stride, dilation), ref) < 1e-5
    assert max_diff(conv1d(x, w, stride, dilation, groups=8), ref) < 1e-5


def test_grouped_conv_falls_back_to_native():
    x, w = _normal(1, 20, 8), _normal(4, 3, 2, seed=1)
    ref = mx.conv1d(x, w, groups=4)
    assert max_diff(conv1d(x, w, groups=4), ref) < 1e-5


@pytest.mark.parametrize("kernel,stride", [(2, 2), (4, 2), (6, 3), (16, 8), (5, 2), (3, 1)])
@pytest.mark.parametrize("frames", [1, 9])
def test_conv_transpose_matmul_equals_native(kernel, stride, frames):
    x, w = _normal(2, frames, 6), _normal(5, kernel, 6, seed=1)
    ref = mx.conv_transpose1d(x, w, stride=stride)
    assert ref.shape[1] == (frames - 1) * stride + kernel
    assert max_diff(conv_transpose1d_matmul(x, w, stride), ref) < 1e-5
    assert max_diff(conv_transpose1d(x, w, stride), ref) < 1e-5


def test_native_convs_off_the_cpu_but_the_transposed_conv_is_rewritten_everywhere(monkeypatch):
    import mlx_qwen3tts.codec.conv as conv

    monkeypatch.setattr(conv, "_on_cpu", lambda: False)
    monkeypatch.setattr(conv, "conv1d_taps", None)
    x = _normal(1, 30, 4)
    assert conv.conv1d(x, _normal(4, 7, 4), dilation=3).shape == (1, 12, 4)
    # The GPU's native transposed conv does about `stride` times the work of the rewrite.
    monkeypatch.setattr(conv, "conv_transpose1d_matmul", lambda x, w, s: "rewrite")
    assert conv.conv_transpose1d(x, _normal(4, 4, 4), 2) == "rewrite"


# ----------------------------------------------------------------- whole-clip semantics

@pytest.mark.parametrize("length", [1, 7, 8, 13])
@pytest.mark.parametrize("kernel,stride,dilation", [(3, 1, 1), (7, 1, 3), (4, 2, 1), (8, 4, 1), (5, 3, 2)])
def test_causal_conv_padding(length, kernel, stride, dilation):
    conv = randomize(CausalConv1d(3, 4, kernel, stride=stride, dilation=dilation), 0)
    x = _normal(1, length, 3)
    span = (kernel - 1) * dilation + 1
    frames = -(-length // stride)
    # Zero left padding `span - stride`, right zeros completing the last window.
    padded = mx.pad(x, [(0, 0), (span - stride, frames * stride - length), (0, 0)])
    ref = mx.conv1d(padded, conv.conv.weight, stride=stride, dilation=dilation) + conv.conv.bias
    out = conv(x)
    assert out.shape == (1, frames, 4)
    assert max_diff(out, ref) < 1e-5


def test_causal_conv_transpose_trims_right():
    convt = randomize(CausalConvTranspose1d(3, 4, 6, 3), 0)
    x = _normal(1, 5, 3)
    full = mx.conv_transpose1d(x, convt.conv.weight, stride=3) + convt.conv.bias
    assert max_diff(convt(x), full[:, :15]) < 1e-5
    with pytest.raises(ValueError):
        CausalConvTranspose1d(3, 4, 2, 3)


# ----------------------------------------------------------------- streaming == offline

def _check_streaming(layer, x: mx.array, tol: float = 1e-5) -> None:
    layer.reset_state()
    full = layer(x)
    for chunk in CHUNKS:
        assert max_diff(stream(layer, x, chunk), full) < tol, f"chunk {chunk}"
    # Causality: more input never changes the earlier output.
    prefix = layer(x[:, : x.shape[1] // 2])
    assert max_diff(full[:, : prefix.shape[1]], prefix) < tol


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("dilation", [1, 3, 9])
@pytest.mark.parametrize("kernel", [1, 2, 3, 7])
def test_causal_conv_streams(kernel, dilation, stride, groups):
    out_channels = 8 if groups == 1 else 4  # groups=4 is depthwise
    if (kernel - 1) * dilation + 1 < stride:
        with pytest.raises(ValueError):
            CausalConv1d(4, out_channels, kernel, stride=stride, dilation=dilation)
        return
    conv = CausalConv1d(4, out_channels, kernel, stride=stride, dilation=dilation, groups=groups)
    conv = randomize(conv, 1)
    # A multiple of the stride: a stream never emits the zero-padded partial last window.
    _check_streaming(conv, _normal(2, 24 * stride, 4))


@pytest.mark.parametrize("kernel,stride", [(2, 2), (4, 2), (10, 5), (16, 8), (5, 2), (3, 3)])
def test_causal_conv_transpose_streams(kernel, stride):
    _check_streaming(randomize(CausalConvTranspose1d(4, 3, kernel, stride), 2), _normal(2, 17, 4))


def test_stream_resets_between_clips():
    conv = randomize(CausalConv1d(4, 4, 7, dilation=3), 3)
    x = _normal(1, 20, 4)
    first = stream(conv, x, 3)
    conv.step(_normal(1, 5, 4, seed=9))
    assert max_diff(stream(conv, x, 3), first) == 0.0


def test_snake_beta_formula():
    act = randomize(SnakeBeta(4), 4)
    x = _normal(2, 10, 4)
    a, b = np.exp(np.array(act.alpha)), np.exp(np.array(act.beta))
    ref = np.array(x) + np.sin(np.array(x) * a) ** 2 / (b + 1e-9)
    assert max_diff(act(x), mx.array(ref)) < 1e-5


def test_convnext_block_streams():
    _check_streaming(randomize(ConvNeXtBlock(8), 5), _normal(2, 23, 8))


@pytest.mark.parametrize("dilation", [1, 3, 9])
def test_residual_unit_streams(dilation):
    _check_streaming(randomize(ResidualUnit(6, dilation), 6), _normal(2, 40, 6))


@pytest.mark.parametrize("rate", [2, 3, 5])
def test_vocoder_block_streams(rate):
    _check_streaming(randomize(VocoderBlock(8, 4, rate), 7), _normal(1, 19, 8))
