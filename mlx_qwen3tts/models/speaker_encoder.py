"""ECAPA-TDNN speaker encoder of the Base models: log-mel frames -> one x-vector per clip.

No BatchNorm anywhere; every conv pads "same" by reflection. Activations are NLC `(B, T, C)`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from ..codec.conv import conv1d
from ..config import SpeakerEncoderConfig
from ..mel import MelConfig, mel_spectrogram
from ..weights import load_module, read_json, require_file

PREFIX = "speaker_encoder."


class TDNN(nn.Module):
    """Conv1d ("same" reflect padding, bias) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)
        self.dilation = dilation
        total = dilation * (kernel_size - 1)
        self.padding = (total // 2, total - total // 2)

    def __call__(self, x: mx.array) -> mx.array:
        if self.padding[1] > 0:
            x = mx.pad(x, [(0, 0), self.padding, (0, 0)], mode="reflect")
        return nn.relu(conv1d(x, self.conv.weight, dilation=self.dilation) + self.conv.bias)


class Res2Net(nn.Module):
    """Splits the channels into `scale` groups; each group after the first adds the previous output."""

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int):
        super().__init__()
        width = channels // scale
        self.scale = scale
        self.blocks = [TDNN(width, width, kernel_size, dilation) for _ in range(scale - 1)]

    def __call__(self, x: mx.array) -> mx.array:
        parts = mx.split(x, self.scale, axis=-1)
        outputs = [parts[0]]
        for i, block in enumerate(self.blocks, start=1):
            outputs.append(block(parts[i] if i == 1 else parts[i] + outputs[-1]))
        return mx.concatenate(outputs, axis=-1)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, se_channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, se_channels, 1)
        self.conv2 = nn.Conv1d(se_channels, channels, 1)

    def __call__(self, x: mx.array) -> mx.array:
        gate = nn.relu(self.conv1(x.mean(axis=1, keepdims=True)))
        return x * mx.sigmoid(self.conv2(gate))


class SERes2NetBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, cfg: SpeakerEncoderConfig, kernel_size: int, dilation: int):
        super().__init__()
        self.tdnn1 = TDNN(in_channels, channels, 1)
        self.res2net_block = Res2Net(channels, cfg.enc_res2net_scale, kernel_size, dilation)
        self.tdnn2 = TDNN(channels, channels, 1)
        self.se_block = SqueezeExcitation(channels, cfg.enc_se_channels)

    def __call__(self, x: mx.array) -> mx.array:
        return x + self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x))))


def _statistics(x: mx.array, weights: mx.array, eps: float) -> tuple[mx.array, mx.array]:
    """Weighted mean and std over time; `weights` sum to one along axis 1."""
    mean = (weights * x).sum(axis=1)
    var = (weights * (x - mean[:, None]) ** 2).sum(axis=1)
    return mean, mx.sqrt(mx.maximum(var, eps))


class AttentiveStatisticsPooling(nn.Module):
    """Per-channel attention over time, conditioned on the clip's global mean and std."""

    eps = 1e-12

    def __init__(self, channels: int, attention_channels: int):
        super().__init__()
        self.tdnn = TDNN(channels * 3, attention_channels, 1)
        self.conv = nn.Conv1d(attention_channels, channels, 1)

    def __call__(self, x: mx.array) -> mx.array:
        b, t, c = x.shape
        uniform = mx.full((1, t, 1), 1.0 / t, dtype=x.dtype)
        mean, std = _statistics(x, uniform, self.eps)
        context = mx.broadcast_to(mx.concatenate([mean, std], axis=-1)[:, None], (b, t, 2 * c))
        scores = self.conv(mx.tanh(self.tdnn(mx.concatenate([x, context], axis=-1))))
        attention = mx.softmax(scores.astype(mx.float32), axis=1).astype(x.dtype)
        mean, std = _statistics(x, attention, self.eps)
        return mx.concatenate([mean, std], axis=-1)


class SpeakerEncoder(nn.Module):
    def __init__(self, config: SpeakerEncoderConfig):
        super().__init__()
        self.config = config
        ch, ks, ds = config.enc_channels, config.enc_kernel_sizes, config.enc_dilations
        self.blocks = [TDNN(config.mel_dim, ch[0], ks[0], ds[0])] + [
            SERes2NetBlock(ch[i - 1], ch[i], config, ks[i], ds[i]) for i in range(1, len(ch) - 1)
        ]
        self.mfa = TDNN(ch[-1], ch[-1], ks[-1], ds[-1])
        self.asp = AttentiveStatisticsPooling(ch[-1], config.enc_attention_channels)
        self.fc = nn.Conv1d(ch[-1] * 2, config.enc_dim, 1)

    def __call__(self, mels: mx.array) -> mx.array:
        """mels `(B, frames, mel_dim)` -> x-vectors `(B, enc_dim)`."""
        x, outputs = mels, []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        x = self.mfa(mx.concatenate(outputs[1:], axis=-1))
        return self.fc(self.asp(x)[:, None])[:, 0]

    def x_vector(self, wav_24k: np.ndarray) -> mx.array:
        """One mono clip at 24 kHz -> its speaker embedding `(enc_dim,)`."""
        wav = np.asarray(wav_24k, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"x_vector expects a mono clip (1-D), got shape {wav.shape}")
        mels = mel_spectrogram(wav, MelConfig(sample_rate=self.config.sample_rate))
        dtype = self.fc.weight.dtype
        return self(mx.array(mels)[None].astype(dtype))[0]

    def sanitize(self, weights: dict[str, mx.array], fmt: str | None = None) -> dict[str, mx.array]:
        """`speaker_encoder.*` tensors (official or MLX layout) -> this module's names and layout.

        Keys with the prefix are taken, and so are un-prefixed keys naming one of this module's
        parameters; all else is dropped. Conv weights are `(out, in, k)` in PyTorch files and
        `(out, k, in)` in MLX ones; `conv_layout` says which a set of weights holds.
        """
        own = dict(tree_flatten(self.parameters()))
        out = {}
        for key, value in weights.items():
            if key.startswith(PREFIX):
                out[key[len(PREFIX) :]] = value
            elif key in own:
                out[key] = value
        if conv_layout(out, {k: v.shape for k, v in own.items()}, fmt) == "pt":
            out = {k: v.transpose(0, 2, 1) if v.ndim == 3 else v for k, v in out.items()}
        return out


def conv_layout(weights: dict[str, mx.array], shapes: dict[str, tuple], fmt: str | None = None) -> str:
    """"pt" or "mlx": the layout of the conv weights in `weights`.

    Each conv's kernel size is known by its name (`shapes`: this module's `(out, k, in)`, from
    the config), so the axis that holds it tells the layout; a conv whose input width equals its
    kernel size tells nothing and is skipped, never guessed at. `fmt`, the file's safetensors
    `format`, decides only when no conv tells.
    """
    seen = set()
    for name, value in weights.items():
        want = shapes.get(name)
        if want is None or len(want) != 3 or value.ndim != 3 or want[1] == want[2]:
            continue
        out, k, width = want
        if tuple(value.shape) == (out, k, width):
            seen.add("mlx")
        elif tuple(value.shape) == (out, width, k):
            seen.add("pt")
    if len(seen) > 1:
        raise ValueError("the speaker encoder's conv weights mix the PyTorch (out, in, kernel) and MLX "
                         "(out, kernel, in) layouts; convert the checkpoint again from the official one")
    if seen:
        return seen.pop()
    return "mlx" if fmt == "mlx" else "pt"


def load_speaker_encoder(folder: str | Path, dtype: mx.Dtype | None = None) -> SpeakerEncoder:
    """The speaker encoder of a Base checkpoint folder (`config.json`, `model.safetensors`)."""
    folder = Path(folder)
    params = read_json(require_file(folder / "config.json", "model"))
    if "speaker_encoder_config" not in params:
        raise ValueError(f"{folder} has no speaker_encoder_config: only Base models can clone voices")
    weights = mx.load(str(require_file(folder / "model.safetensors", "model")))
    model = SpeakerEncoder(SpeakerEncoderConfig.from_dict(params))
    return load_module(model, weights, folder, None if dtype is None else lambda _, v: v.astype(dtype))
