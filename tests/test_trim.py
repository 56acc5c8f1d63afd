"""Cutting a chunk stream's audio: the quiet at an utterance's end, whatever the frame counts per
chunk, and the loud end found on the 20 ms grid (synthetic audio, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_qwen3tts.audio import SAMPLE_RATE, AudioChunk
from mlx_qwen3tts.trim import KEEP, WINDOW, loud_end, trim_silence

RMS = 0.01


def speech_then_quiet(loud: int, quiet: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.uniform(-0.5, 0.5, loud), np.zeros(quiet)]).astype(np.float32)


def chunks_of(samples: np.ndarray, sizes: list[int], end_of_utterance: bool = True) -> list[AudioChunk]:
    out, start, i = [], 0, 0
    while start < len(samples):
        piece = samples[start:start + sizes[i % len(sizes)]]
        start, i = start + len(piece), i + 1
        last = start >= len(samples)
        out.append(AudioChunk(piece, SAMPLE_RATE, i - 1, last, i, 0.0, end_of_utterance=last and end_of_utterance))
    return out


def test_loud_end_is_just_past_the_last_loud_window():
    samples = speech_then_quiet(3 * WINDOW, 5 * WINDOW)
    assert loud_end(samples, RMS) == 3 * WINDOW
    assert loud_end(np.zeros(4 * WINDOW, np.float32), RMS) == 0
    # A loud tail shorter than a window still counts: nothing after it is quiet.
    assert loud_end(speech_then_quiet(3 * WINDOW + 7, 0), RMS) == 3 * WINDOW + 7


# Chunks hold whole frames (1920 samples), so the 20 ms windows stay on one grid across them.
@pytest.mark.parametrize("sizes", [[1920], [1920, 3840, 7680], [5760, 1920]])
def test_an_utterance_keeps_a_short_pause_whatever_the_chunk_sizes(sizes):
    samples = speech_then_quiet(10 * WINDOW, SAMPLE_RATE)
    out = list(trim_silence(iter(chunks_of(samples, sizes)), RMS))
    whole = np.concatenate([c.samples for c in out])
    np.testing.assert_array_equal(whole, samples[:10 * WINDOW + KEEP])
    assert [c.index for c in out] == list(range(len(out))) and out[-1].is_last and out[-1].end_of_utterance


def test_quiet_between_sounds_is_kept():
    samples = np.concatenate([speech_then_quiet(WINDOW, 4 * WINDOW), speech_then_quiet(WINDOW, 0)])
    out = list(trim_silence(iter(chunks_of(samples, [1920])), RMS))
    np.testing.assert_array_equal(np.concatenate([c.samples for c in out]), samples)


def test_closing_the_stage_closes_its_source():
    closed = []

    def source():
        try:
            yield from chunks_of(speech_then_quiet(4 * WINDOW, 0), [WINDOW])
        finally:
            closed.append(True)

    stage = trim_silence(source(), RMS)
    next(stage)
    stage.close()
    assert closed == [True]
