"""`speed`: the time-scale stage keeps the pitch, makes each utterance exactly 1/speed as long,
hands audio on chunk by chunk (not at the end), and refuses speeds outside 0.25..4."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_qwen3tts.audio import AudioChunk
from mlx_qwen3tts.timescale import check_speed, time_scaled

pytest.importorskip("pylibrb", reason="speed needs the speed extra (pylibrb has no wheel for this platform)")

SR = 24000
RAMP = [1920, 3840, 7680] + [15360] * 6  # a stream's chunk sizes


def voiced(seconds: float, f0: float = 140.0) -> np.ndarray:
    """A vowel-like tone: harmonics of `f0` with a gentle vibrato and syllable-rate loudness."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 + 8 * np.sin(2 * np.pi * 0.7 * t)) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def pitch(y: np.ndarray) -> float:
    """The median fundamental over 85 ms windows, by autocorrelation."""
    found = []
    for start in range(0, len(y) - 2048, 2048):
        seg = y[start:start + 2048] - y[start:start + 2048].mean()
        ac = np.correlate(seg, seg, "full")[2047:]
        lo, hi = SR // 400, SR // 60
        found.append(SR / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(found))


def chunks(samples: np.ndarray, utterance_ends=()) -> list[AudioChunk]:
    out, start = [], 0
    for index, size in enumerate(RAMP):
        piece = samples[start:start + size]
        start += len(piece)
        last = start >= len(samples)
        out.append(AudioChunk(piece, SR, index, last, 0, 0.0, end_of_utterance=last or index in utterance_ends))
        if last:
            break
    return out


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.5, 2.0, 4.0])
def test_length_scales_by_one_over_speed_and_pitch_stays(speed):
    source = voiced(4.0)
    out = list(time_scaled(chunks(source), speed))
    audio = np.concatenate([c.samples for c in out])
    assert len(audio) == round(len(source) / speed)
    assert pitch(audio) == pytest.approx(pitch(source), rel=0.04)
    assert [c.index for c in out] == list(range(len(out))) and out[-1].is_last
    assert np.sqrt(np.mean(audio ** 2)) > 0.5 * np.sqrt(np.mean(source ** 2))  # speech, not silence


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_audio_comes_out_as_it_goes_in(speed):
    out = list(time_scaled(chunks(voiced(4.0)), speed))
    assert len(out[0].samples) > 0  # speech starts with the first frame's chunk
    made = np.cumsum([len(c.samples) for c in out])
    taken = np.cumsum([len(c.samples) for c in chunks(voiced(4.0))])
    assert all(m >= 0.8 * t / speed - 3000 for m, t in zip(made[:-1], taken[:-1]))  # never held back long


def test_each_utterance_is_whole_at_its_end():
    source = voiced(3.0)
    out = list(time_scaled(chunks(source, utterance_ends={2}), 2.0))
    first = sum(len(c.samples) for c in out[:3])
    assert first == round(sum(RAMP[:3]) / 2.0)  # flushed at the utterance's end, nothing carried over
    assert sum(len(c.samples) for c in out) == round(len(source) / 2.0)


@pytest.mark.parametrize("bad", [0.1, 4.5, 0, -1, "fast", None, True, float("nan")])
def test_speeds_outside_the_range_are_refused(bad):
    with pytest.raises(ValueError, match="speed must be a number from 0.25 to 4.0"):
        check_speed(bad)
    with pytest.raises(ValueError, match="speed must be"):
        list(time_scaled(chunks(voiced(0.5)), bad))


def test_the_library_takes_speed_in_stream_and_generate(tmp_path):
    import mlx_qwen3tts
    from tiny import make_tiny_checkpoint

    tts = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "cv", seed=1))
    args = dict(speaker=tts.speakers[0], seed=2, max_new_tokens=16)
    streamed = list(tts.stream("Hello there, a test.", speed=2.0, **args))
    assert len(streamed[0].samples) > 0 and streamed[-1].is_last
    assert sum(len(c.samples) for c in streamed) == 15 * 1920 // 2
    assert len(tts.generate("Hello there, a test.", speed=0.5, **args).samples) == 15 * 1920 * 2
    with pytest.raises(ValueError, match="speed must be a number from 0.25 to 4.0"):
        tts.stream("Hello.", speed=8, **args)
