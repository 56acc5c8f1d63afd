"""The 12 Hz codec encoder (Mimi): 24 kHz audio -> 16 codes per 80 ms frame.

SEANet (25 Hz) -> causal transformer -> 2x downsample (12.5 Hz) -> split residual VQ.
The semantic and acoustic quantizers both start from the same downsampled embedding.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ..weights import load_module, read_json, require_file
from .conv import CausalConv1d
from .encoder_config import EncoderConfig
from .seanet import SeanetEncoder
from .transformer import Attention, LayerScale

PREFIX = "encoder."
_RENAMES = (
    ("encoder.", "seanet."),
    ("encoder_transformer.", "transformer."),
    ("downsample.", "downsample."),
    ("quantizer.semantic_residual_vector_quantizer.", "quantizer.semantic."),
    ("quantizer.acoustic_residual_vector_quantizer.", "quantizer.acoustic."),
)
_CODEBOOK = re.compile(r"quantizer\.(semantic|acoustic)\.layers\.(\d+)\.codebook\.(\w+)")


class MLP(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(nn.gelu(self.fc1(x)))  # exact (erf) GELU


class TransformerLayer(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.self_attn_layer_scale = LayerScale(cfg.hidden_size, 1.0)
        self.post_attention_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.mlp_layer_scale = LayerScale(cfg.hidden_size, 1.0)

    def __call__(self, x: mx.array) -> mx.array:
        # Full causal attention: the reference honours `sliding_window` only under flash-attention.
        x = x + self.self_attn_layer_scale(self.self_attn(self.input_layernorm(x), "causal"))
        return x + self.mlp_layer_scale(self.mlp(self.post_attention_layernorm(x)))


class Transformer(nn.Module):
    """Pre-norm layers with no final norm."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.layers = [TransformerLayer(cfg) for _ in range(cfg.num_hidden_layers)]

    def __call__(self, x: mx.array) -> mx.array:
        for layer in self.layers:
            x = layer(x)
        return x


class ReplicateCausalConv1d(CausalConv1d):
    """`CausalConv1d` that pads by repeating the edge frames instead of zeros."""

    def __call__(self, x: mx.array) -> mx.array:
        length = x.shape[1]
        frames = math.ceil((length + self.padding - self.span) / self.stride) + 1
        extra = max((frames - 1) * self.stride + self.span - self.padding - length, 0)
        return self._conv(mx.pad(x, [(0, 0), (self.padding, extra), (0, 0)], mode="edge"))

    def step(self, x: mx.array) -> mx.array:
        if self._buffer is None and self.padding > 0:
            self._buffer = mx.repeat(x[:, :1], self.padding, axis=1)
        return super().step(x)


class ResidualQuantizer(nn.Module):
    """1x1 projection, then nearest-codeword search on what the earlier codebooks left over."""

    def __init__(self, cfg: EncoderConfig, num_codebooks: int):
        super().__init__()
        self.input_proj = nn.Linear(cfg.hidden_size, cfg.vector_quantization_hidden_dimension, bias=False)
        # Codebook vectors (embed_sum / usage), computed once from the checkpoint by `sanitize`.
        self.codebooks = mx.zeros((num_codebooks, cfg.codebook_size, cfg.codebook_dim))

    def __call__(self, x: mx.array) -> mx.array:
        """`(B, T, hidden)` -> codes `(B, T, num_codebooks)` int32."""
        residual = self.input_proj(x).astype(mx.float32)
        codes = []
        for codebook in self.codebooks.astype(mx.float32):
            # argmin |r - c|^2 = argmin (|c|^2 - 2 r.c), in float32
            scores = (codebook * codebook).sum(axis=-1) - 2.0 * (residual @ codebook.T)
            index = mx.argmin(scores, axis=-1).astype(mx.int32)
            residual = residual - codebook[index]
            codes.append(index)
        return mx.stack(codes, axis=-1)


class SplitQuantizer(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        n_semantic = cfg.num_semantic_quantizers
        self.semantic = ResidualQuantizer(cfg, n_semantic)
        self.acoustic = ResidualQuantizer(cfg, cfg.num_codes - n_semantic) if cfg.num_codes > n_semantic else None

    def __call__(self, x: mx.array) -> mx.array:
        codes = self.semantic(x)
        if self.acoustic is None:
            return codes
        return mx.concatenate([codes, self.acoustic(x)], axis=-1)


class SpeechEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.seanet = SeanetEncoder(config)
        self.transformer = Transformer(config)
        self.downsample = ReplicateCausalConv1d(
            config.hidden_size, config.hidden_size, config.downsample_kernel,
            stride=config.downsample_stride, bias=False,
        )
        self.quantizer = SplitQuantizer(config)

    def __call__(self, wav: mx.array) -> mx.array:
        """`(B, samples)` float at 24 kHz -> the 12.5 Hz embeddings `(B, frames, hidden)`."""
        x = self.seanet(wav[..., None])
        return self.downsample(self.transformer(x))

    def encode(self, wav: mx.array) -> mx.array:
        """`(B, samples)` float at 24 kHz -> codes `(B, ceil(samples / 1920), num_codes)` int32.

        Clips in a batch must have the same length (the reference pads on the right, and a
        padded clip's last frame differs from the unpadded one's).
        """
        wav = wav if isinstance(wav, mx.array) else mx.array(wav)
        if wav.ndim == 1:
            wav = wav[None]
        if wav.ndim != 2 or wav.shape[1] == 0:
            raise ValueError(f"expected audio of shape (batch, samples), got {wav.shape}")
        wav = wav.astype(self.downsample.conv.weight.dtype)
        frames = -(-wav.shape[1] // self.config.samples_per_frame)
        return self.quantizer(self(wav))[:, :frames]

    def sanitize(self, weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Official `encoder.*` tensors -> this module's names and MLX layouts.

        Conv weights go from `(out, in, k)` to `(out, k, in)`; the quantizers' 1x1 input convs
        become Linear weights; codebooks become vectors (`embed_sum / max(usage, 1e-5)`), only
        as many as are kept. Keys that already name a parameter pass through; all else
        (`decoder.*`, output projections, unused codebooks) is dropped.
        """
        own = {k for k, _ in tree_flatten(self.parameters())}
        out: dict[str, mx.array] = {}
        tables: dict[str, dict[int, dict[str, mx.array]]] = {}
        for key, value in weights.items():
            if not key.startswith(PREFIX):
                if key in own:
                    out[key] = value
                continue
            key = _rename(key[len(PREFIX) :])
            if key is None:
                continue
            if m := _CODEBOOK.fullmatch(key):
                tables.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = value
                continue
            if key.endswith("input_proj.weight"):
                value = value[..., 0]
            elif key.startswith(("seanet.", "downsample.")) and key.endswith(".conv.weight"):
                value = value.transpose(0, 2, 1)
            if key in own:
                out[key] = value
        for group, layers in tables.items():
            if self.quantizer.get(group) is None:
                continue
            n = self.quantizer[group].codebooks.shape[0]
            if any(i not in layers for i in range(n)):
                raise ValueError(f"checkpoint lacks some of the first {n} {group} codebooks")
            vectors = [_codebook_vectors(layers[i]["embed_sum"], layers[i]["cluster_usage"]) for i in range(n)]
            out[f"quantizer.{group}.codebooks"] = mx.stack(vectors)
        return out


def _rename(key: str) -> str | None:
    for old, new in _RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def _codebook_vectors(embed_sum: mx.array, cluster_usage: mx.array) -> mx.array:
    usage = mx.maximum(cluster_usage.astype(mx.float32), 1e-5)
    return embed_sum.astype(mx.float32) / usage[:, None]


def load_speech_encoder(folder: str | Path, dtype: mx.Dtype | None = None) -> SpeechEncoder:
    """Loads the encoder from a speech tokenizer folder (`config.json`, `model.safetensors`).

    Args:
        folder: the checkpoint's `speech_tokenizer` folder.
        dtype: cast the network's weights to this type (codebooks stay float32).
    """
    folder = Path(folder)
    config = EncoderConfig.from_speech_tokenizer(read_json(require_file(folder / "config.json", "speech tokenizer")))
    weights = mx.load(str(require_file(folder / "model.safetensors", "speech tokenizer")))

    def cast(k: str, v: mx.array) -> mx.array:
        return v if dtype is None or k.endswith("codebooks") else v.astype(dtype)

    return load_module(SpeechEncoder(config), weights, folder, cast)
