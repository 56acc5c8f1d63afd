"""The MLX speech decoder against the official PyTorch decoder on tiny random checkpoints."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from reference import build_speech_tokenizer, reference_decode, requires_reference

from mlx_qwen3tts.codec import chunked_decode, load_speech_decoder

pytestmark = requires_reference

# Decoder overrides for `build_speech_tokenizer`; each changes every width it can.
SHAPES = {
    "base": {},
    "wide": dict(hidden_size=48, num_attention_heads=3, num_key_value_heads=3, head_dim=16,
                 latent_dim=24, decoder_dim=32, codebook_dim=16, num_hidden_layers=3,
                 intermediate_size=40),
    "gqa_window": dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                       latent_dim=40, decoder_dim=48, codebook_dim=64, num_hidden_layers=1,
                       intermediate_size=24, sliding_window=9),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def models(request):
    name = request.param
    folder = build_speech_tokenizer(f"codec_parity_{name}", seed=len(name), **SHAPES[name])
    return folder, load_speech_decoder(folder)


def _codes(batch: int, frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2048, size=(batch, frames, 16))


@pytest.mark.parametrize("frames", [1, 7, 50])
def test_decode_matches_reference(models, frames):
    reference, ours = models
    codes = _codes(2, frames, seed=frames)
    want = reference_decode(reference, codes)
    got = np.array(ours(mx.array(codes)))
    assert got.shape == want.shape == (2, frames * 1920)
    assert np.abs(want).max() > 0.05 and (np.abs(want) < 1).mean() > 0.9  # not silent, not clipped
    assert np.abs(got - want).max() <= 1e-4
    ours.reset_state()
    streamed = [ours.step(mx.array(codes[:, i : i + 3])) for i in range(0, frames, 3)]
    assert np.abs(np.array(mx.concatenate(streamed, axis=1)) - want).max() <= 1e-4


def test_chunked_decode_matches_reference(models):
    reference, ours = models
    codes = _codes(1, 320, seed=320)
    want = reference_decode(reference, codes, chunked=True)
    got = np.array(chunked_decode(ours, mx.array(codes)))
    assert got.shape == want.shape == (1, 320 * 1920)
    assert np.abs(got - want).max() <= 1e-4
