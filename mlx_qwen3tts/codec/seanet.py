"""SEANet encoder (Mimi's convolutional front end): waveform -> 25 Hz latent frames.

Layer lists keep the reference's indices (activations included), so weight names map 1:1.
Every conv is a `CausalConv1d`, so the stack can also be streamed with `step()`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .conv import CausalConv1d, StreamingModule
from .encoder_config import EncoderConfig


class ResnetBlock(StreamingModule):
    """x + conv_k1(ELU(conv_k(ELU(x)))), halving the channels inside."""

    def __init__(self, cfg: EncoderConfig, dim: int, dilation: int):
        super().__init__()
        hidden = dim // cfg.compress
        self.block = [
            nn.ELU(),
            CausalConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation),
            nn.ELU(),
            CausalConv1d(hidden, dim, 1),
        ]
        if cfg.use_conv_shortcut:
            self.shortcut = CausalConv1d(dim, dim, 1)

    def _run(self, x: mx.array, streaming: bool) -> mx.array:
        y = x
        for layer in self.block:
            y = layer.step(y) if streaming and isinstance(layer, CausalConv1d) else layer(y)
        if "shortcut" in self:
            x = self.shortcut.step(x) if streaming else self.shortcut(x)
        return x + y

    def __call__(self, x: mx.array) -> mx.array:
        return self._run(x, streaming=False)

    def step(self, x: mx.array) -> mx.array:
        # Kernel-1 convs and a causal k-tap conv with stride 1 emit one frame per input frame,
        # so both branches stay aligned while streaming.
        return self._run(x, streaming=True)


class SeanetEncoder(StreamingModule):
    """conv -> [ResnetBlock x n, ELU, strided conv] per ratio -> ELU -> conv to hidden_size."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        layers: list[nn.Module] = [CausalConv1d(cfg.audio_channels, cfg.num_filters, cfg.kernel_size)]
        channels = cfg.num_filters
        for ratio in reversed(cfg.upsampling_ratios):
            for j in range(cfg.num_residual_layers):
                layers.append(ResnetBlock(cfg, channels, cfg.dilation_growth_rate**j))
            layers += [nn.ELU(), CausalConv1d(channels, channels * 2, 2 * ratio, stride=ratio)]
            channels *= 2
        layers += [nn.ELU(), CausalConv1d(channels, cfg.hidden_size, cfg.last_kernel_size)]
        self.layers = layers

    def __call__(self, x: mx.array) -> mx.array:
        """`(B, samples, 1)` -> `(B, ceil(samples / hop), hidden_size)`."""
        for layer in self.layers:
            x = layer(x)
        return x

    def step(self, x: mx.array) -> mx.array:
        for layer in self.layers:
            x = layer.step(x) if isinstance(layer, StreamingModule) else layer(x)
        return x
