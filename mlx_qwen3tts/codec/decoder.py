"""The 12 Hz speech tokenizer's decoder: 16 codes per frame in, 1920 samples at 24 kHz out.

codes -> dequantize (split RVQ) -> causal conv k3 -> sliding-window transformer ->
[transposed conv x2 -> ConvNeXt] x2 -> causal conv k7 -> 4 SnakeBeta vocoder blocks
(x8, x5, x4, x3) -> SnakeBeta -> causal conv k7 to one channel -> clip to [-1, 1].

Every stage is causal, and every transposed conv emits exactly `stride` samples per input
frame (its overlap waits for the next frame), so `step` on consecutive pieces of a clip
returns exactly what `__call__` returns for the whole clip.
"""

from __future__ import annotations

import re

import mlx.core as mx
from mlx.utils import tree_flatten

from .blocks import ConvNeXtBlock, SnakeBeta, VocoderBlock
from .config import DecoderConfig
from .conv import CausalConv1d, CausalConvTranspose1d, StreamingModule
from .quantizer import SplitQuantizer, codebook_vectors
from .transformer import DecoderTransformer

_CODEBOOK = re.compile(r"quantizer\.(rvq_first|rvq_rest)\.vq\.layers\.(\d+)\._codebook\.(\w+)")


class SpeechDecoder(StreamingModule):
    """Decodes codes `(B, T, num_quantizers)` into waveforms `(B, T * 1920)` in [-1, 1]."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        cfg = self.config = config
        latent = cfg.latent_dim
        self.quantizer = SplitQuantizer(
            cfg.num_quantizers, cfg.codebook_size, cfg.codebook_dim // 2, cfg.codebook_dim
        )
        self.pre_conv = CausalConv1d(cfg.codebook_dim, latent, 3)
        self.pre_transformer = DecoderTransformer(cfg)
        self.upsample = [
            [CausalConvTranspose1d(latent, latent, r, r), ConvNeXtBlock(latent)]
            for r in cfg.upsampling_ratios
        ]
        dims = [cfg.decoder_dim // 2**i for i in range(len(cfg.upsample_rates) + 1)]
        self.vocoder = [
            CausalConv1d(latent, dims[0], 7),
            *(VocoderBlock(dims[i], dims[i + 1], r) for i, r in enumerate(cfg.upsample_rates)),
            SnakeBeta(dims[-1]),
            CausalConv1d(dims[-1], 1, 7),
        ]

    @property
    def samples_per_frame(self) -> int:
        return self.config.total_upsample

    def _layers(self) -> list:
        return [self.pre_transformer, *(m for stage in self.upsample for m in stage), *self.vocoder]

    def _dequantize(self, codes: mx.array) -> mx.array:
        if codes.ndim != 3 or codes.shape[-1] != self.config.num_quantizers:
            raise ValueError(
                f"expected codes of shape (B, T, {self.config.num_quantizers}), got {codes.shape}"
            )
        # Padding codes (-1) decode as code 0, as in the reference wrapper.
        return self.quantizer(mx.maximum(codes, 0))

    @staticmethod
    def _waveform(x: mx.array) -> mx.array:
        return mx.clip(x[..., 0], -1.0, 1.0).astype(mx.float32)

    def __call__(self, codes: mx.array) -> mx.array:
        """Decodes a whole clip: codes (B, T, 16) int -> (B, T * 1920) float32."""
        x = self.pre_conv(self._dequantize(codes))
        for layer in self._layers():
            x = layer(x)
        return self._waveform(x)

    def step(self, codes: mx.array) -> mx.array:
        """Decodes the next `t` frames of a stream: (B, t, 16) -> (B, t * 1920).

        Concatenated steps equal `__call__` on the concatenated codes; `reset_state()`
        starts a new stream. State is bounded: conv context, transposed-conv overlap and
        a rotating attention cache of `sliding_window - 1` frames.
        """
        x = self.pre_conv.step(self._dequantize(codes))
        for layer in self._layers():
            x = layer.step(x) if isinstance(layer, StreamingModule) else layer(x)
        return self._waveform(x)

    def sanitize(self, weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Official `decoder.*` tensors -> this module's names and MLX layouts.

        Keys that already name one of this module's parameters pass through; all else
        (the codec encoder in either layout, the unused quantizer `input_proj`) is dropped.
        """
        # Only our own names: the encoder's MLX keys share the file (and `quantizer.`).
        own = {k for k, _ in tree_flatten(self.parameters())}
        out, official = {}, {}
        for key, value in weights.items():
            if key.startswith("decoder."):
                official[key[len("decoder.") :]] = value
            elif key in own:
                out[key] = value
        if not official:
            return out

        conv_keys, convt_keys = set(), set()
        for name, module in self.named_modules():
            if isinstance(module, CausalConv1d):
                conv_keys.add(f"{name}.conv.weight")
            elif isinstance(module, CausalConvTranspose1d):
                convt_keys.add(f"{name}.conv.weight")

        codebooks: dict[str, dict[int, dict[str, mx.array]]] = {}
        for key, value in official.items():
            if m := _CODEBOOK.fullmatch(key):
                group, index, field = m.group(1), int(m.group(2)), m.group(3)
                codebooks.setdefault(group, {}).setdefault(index, {})[field] = value
                continue
            if key.startswith("quantizer.") and ".input_proj." in key:
                continue
            if key.startswith("decoder."):
                key = "vocoder." + key[len("decoder.") :]
            if key in conv_keys:
                value = value.transpose(0, 2, 1)
            elif key in convt_keys:
                value = value.transpose(1, 2, 0)
            elif key.startswith("quantizer.") and key.endswith("output_proj.weight"):
                value = value.squeeze(-1)
            out[key] = value

        for group, layers in codebooks.items():
            vectors = [
                codebook_vectors(layers[i]["embedding_sum"], layers[i]["cluster_usage"])
                for i in sorted(layers)
            ]
            out[f"quantizer.{group}.codebooks"] = mx.stack(vectors)
        return out


def chunked_decode(
    decoder: SpeechDecoder, codes: mx.array, chunk_size: int = 300, left_context: int = 25
) -> mx.array:
    """The reference's offline decode: windows of `chunk_size` frames, each after the first
    decoded with `left_context` earlier frames whose samples are then dropped.

    Equal to `decoder(codes)` up to `chunk_size` frames; beyond that it matches the
    reference's own windowed output rather than a single full decode.
    """
    hop = decoder.samples_per_frame
    total = codes.shape[1]
    pieces, start = [], 0
    while start < total:
        end = min(start + chunk_size, total)
        context = left_context if start - left_context > 0 else start
        wav = decoder(codes[:, start - context : end])[:, context * hop :]
        mx.eval(wav)  # bounds the lazy graph to one window
        pieces.append(wav)
        start = end
    if not pieces:
        return mx.zeros((codes.shape[0], 0), dtype=mx.float32)
    return mx.concatenate(pieces, axis=1)
