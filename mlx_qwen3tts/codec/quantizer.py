"""Codes to latent vectors: the split residual vector quantizer's decoding half."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


class CodebookGroup(nn.Module):
    """`num_quantizers` codebooks whose vectors are summed, then projected (1x1 conv, no bias)."""

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, out_dim: int):
        super().__init__()
        # Codebook vectors (embedding_sum / usage), computed once when the weights are loaded.
        self.codebooks = mx.zeros((num_quantizers, codebook_size, dim))
        self.output_proj = nn.Linear(dim, out_dim, bias=False)

    def __call__(self, codes: mx.array) -> mx.array:
        """codes (B, T, num_quantizers) -> (B, T, out_dim)."""
        n_q, size, dim = self.codebooks.shape
        # One gather over the flattened tables instead of one per codebook.
        rows = codes + mx.arange(n_q, dtype=codes.dtype) * size
        vectors = self.codebooks.reshape(n_q * size, dim)[rows]
        return self.output_proj(vectors.sum(axis=-2))


class SplitQuantizer(nn.Module):
    """Codebook 0 (semantic) and codebooks 1.. (acoustic) decoded apart, then added."""

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, out_dim: int):
        super().__init__()
        self.rvq_first = CodebookGroup(1, codebook_size, dim, out_dim)
        self.rvq_rest = CodebookGroup(num_quantizers - 1, codebook_size, dim, out_dim)

    def __call__(self, codes: mx.array) -> mx.array:
        """codes (B, T, num_quantizers) int -> (B, T, out_dim)."""
        return self.rvq_first(codes[..., :1]) + self.rvq_rest(codes[..., 1:])


def codebook_vectors(embedding_sum: mx.array, cluster_usage: mx.array) -> mx.array:
    """Codebook vectors from the stored running sums and usage counts (in float32)."""
    usage = mx.maximum(cluster_usage.astype(mx.float32), 1e-5)
    return embedding_sum.astype(mx.float32) / usage[:, None]
