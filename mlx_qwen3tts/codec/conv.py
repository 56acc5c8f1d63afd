"""Causal 1-D convolutions (NLC layout) that run a whole clip or stream it piece by piece.

Every streamable layer here offers `__call__(x)` for a whole clip, `step(x)` for the next
frames of a stream (it carries its own left context between calls) and `reset_state()`.
Streaming state lives in `_`-prefixed attributes, so it is never saved, loaded or quantized.
Weights use MLX layouts: conv `(C_out, K, C_in / groups)`, transposed conv `(C_out, K, C_in)`.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn


def _on_cpu() -> bool:
    """The one device test of the codec: CPU-only rewrites of MLX's slow CPU kernels."""
    return mx.default_device() == mx.cpu


def _empty(x: mx.array, frames: int, channels: int) -> mx.array:
    return mx.zeros((x.shape[0], frames, channels), dtype=x.dtype)


def conv1d_taps(x: mx.array, weight: mx.array, stride: int = 1, dilation: int = 1) -> mx.array:
    """Unpadded conv as a sum of one matmul per kernel tap (equal to `mx.conv1d`, groups=1)."""
    c_out, k, _ = weight.shape
    n = (x.shape[1] - (k - 1) * dilation - 1) // stride + 1
    y = None
    for i in range(k):
        start = i * dilation
        xi = x[:, start : start + (n - 1) * stride + 1 : stride]
        yi = xi @ weight[:, i, :].T
        y = yi if y is None else y + yi
    return y


def conv1d_depthwise(x: mx.array, weight: mx.array, stride: int = 1, dilation: int = 1) -> mx.array:
    """Unpadded depthwise conv as a sum of per-tap products (equal to `mx.conv1d`, groups=C)."""
    k = weight.shape[1]
    n = (x.shape[1] - (k - 1) * dilation - 1) // stride + 1
    y = None
    for i in range(k):
        start = i * dilation
        yi = x[:, start : start + (n - 1) * stride + 1 : stride] * weight[:, i, 0]
        y = yi if y is None else y + yi
    return y


def conv1d(
    x: mx.array, weight: mx.array, stride: int = 1, dilation: int = 1, groups: int = 1
) -> mx.array:
    """Unpadded 1-D conv; on the CPU, shapes that hit MLX's slow conv kernels use matmuls."""
    if _on_cpu():
        c_out, k, _ = weight.shape
        if groups == 1 and (dilation > 1 or k == 1 or c_out < 8):
            return conv1d_taps(x, weight, stride, dilation)
        if groups > 1 and groups == x.shape[-1] == weight.shape[0] and weight.shape[-1] == 1:
            return conv1d_depthwise(x, weight, stride, dilation)
    return mx.conv1d(x, weight, stride=stride, dilation=dilation, groups=groups)


def conv_transpose1d_matmul(x: mx.array, weight: mx.array, stride: int) -> mx.array:
    """Transposed conv as one matmul plus overlap-add (equal to `mx.conv_transpose1d`)."""
    b, t, c_in = x.shape
    c_out, k, _ = weight.shape
    m = -(-k // stride)  # input frames that touch one output sample
    # (C_out * K, C_in) is a free reshape; its transpose is a view, so no weight copy.
    y = (x @ weight.reshape(c_out * k, c_in).T).reshape(b, t, c_out, k)
    y = y.transpose(0, 1, 3, 2)
    if m * stride > k:
        y = mx.pad(y, [(0, 0), (0, 0), (0, m * stride - k), (0, 0)])
    y = y.reshape(b, t, m, stride, c_out)
    out = None
    for j in range(m):
        yj = mx.pad(y[:, :, j], [(0, 0), (j, m - 1 - j), (0, 0), (0, 0)]) if m > 1 else y[:, :, j]
        out = yj if out is None else out + yj
    return out.reshape(b, (t + m - 1) * stride, c_out)[:, : (t - 1) * stride + k]


def conv_transpose1d(x: mx.array, weight: mx.array, stride: int) -> mx.array:
    """Untrimmed transposed conv: `(T - 1) * stride + K` output frames.

    The matmul form on every device: MLX runs `mx.conv_transpose1d` as a GEMM over an
    input-dilated unfold, about `stride` times the work (the native op stays the tests' reference).
    """
    return conv_transpose1d_matmul(x, weight, stride)


class StreamingModule(nn.Module):
    """A module whose `reset_state()` clears the streaming state of itself and its children."""

    def _reset(self) -> None:
        pass

    def reset_state(self) -> None:
        """Forgets everything streamed so far; the next `step` starts a new clip."""
        for m in self.modules():
            if isinstance(m, StreamingModule):
                m._reset()


class CausalConv1d(StreamingModule):
    """Conv with zero left padding `(K - 1) * dilation + 1 - stride` (output frames ceil(L / stride))."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.span = (kernel_size - 1) * dilation + 1
        if self.span < stride:
            raise ValueError(f"the kernel span {self.span} must be at least the stride {stride}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, groups=groups, bias=bias)
        self.stride = stride
        self.dilation = dilation
        self.groups = groups
        self.padding = self.span - stride
        self._buffer: mx.array | None = None

    def _reset(self) -> None:
        self._buffer = None

    def _conv(self, x: mx.array) -> mx.array:
        y = conv1d(x, self.conv.weight, self.stride, self.dilation, self.groups)
        return y + self.conv.bias if "bias" in self.conv else y

    def __call__(self, x: mx.array) -> mx.array:
        length = x.shape[1]
        frames = math.ceil((length + self.padding - self.span) / self.stride) + 1
        extra = (frames - 1) * self.stride + self.span - self.padding - length
        return self._conv(mx.pad(x, [(0, 0), (self.padding, max(extra, 0)), (0, 0)]))

    def step(self, x: mx.array) -> mx.array:
        """Outputs every frame whose window is complete; the rest waits for the next call.

        With stride > 1 a clip's last partial window (zero-padded by `__call__`) is not emitted.
        """
        if self._buffer is None and self.padding > 0:
            x = mx.pad(x, [(0, 0), (self.padding, 0), (0, 0)])
        elif self._buffer is not None:
            x = mx.concatenate([self._buffer, x], axis=1)
        frames = (x.shape[1] - self.span) // self.stride + 1 if x.shape[1] >= self.span else 0
        self._buffer = x[:, frames * self.stride :]
        if frames == 0:
            return _empty(x, 0, self.conv.weight.shape[0])
        return self._conv(x[:, : (frames - 1) * self.stride + self.span])


class CausalConvTranspose1d(StreamingModule):
    """Transposed conv trimmed by `K - stride` frames on the right (L in, L * stride out)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} must be at least the stride {stride}")
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.stride = stride
        self.trim = kernel_size - stride
        self._tail: mx.array | None = None

    def _reset(self) -> None:
        self._tail = None

    def __call__(self, x: mx.array) -> mx.array:
        y = conv_transpose1d(x, self.conv.weight, self.stride)
        return y[:, : x.shape[1] * self.stride] + self.conv.bias

    def step(self, x: mx.array) -> mx.array:
        """Emits `stride` frames per input frame; the overlapping tail waits for the next call."""
        n = x.shape[1] * self.stride
        if n == 0:
            return _empty(x, 0, self.conv.weight.shape[0])
        y = conv_transpose1d(x, self.conv.weight, self.stride)
        if self.trim == 0:
            return y + self.conv.bias
        if self._tail is not None:
            y = mx.concatenate([y[:, : self.trim] + self._tail, y[:, self.trim :]], axis=1)
        self._tail = y[:, n:]
        return y[:, :n] + self.conv.bias
