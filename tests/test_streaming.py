"""generate / stream / decode on a tiny checkpoint: streaming equals offline, chunk ramp, early stop."""

import numpy as np
import pytest
import soundfile as sf

from mlx_qwen3tts.pipeline import chunk_schedule

ARGS = dict(speaker="vivian", language="english", seed=11, max_new_tokens=40)


@pytest.fixture(scope="module")
def tts(tiny_tts):
    return tiny_tts


@pytest.fixture(scope="module")
def offline(tts):
    return tts.generate("hello world, hello", **ARGS)


def test_generate_returns_audio_matching_its_codes(tts, offline):
    assert offline.codes.shape[0] >= 20 and offline.sample_rate == 24000
    assert offline.samples.dtype == np.float32 and len(offline.samples) == 1920 * len(offline.codes)
    assert np.abs(offline.samples).max() <= 1.0 and offline.samples.std() > 0
    assert offline.seconds > 0 and offline.rtf == pytest.approx(offline.seconds / offline.duration)
    np.testing.assert_allclose(tts.decode(offline.codes), offline.samples, atol=1e-5)
    assert offline.finish_reason in ("eos", "max_new_tokens")


@pytest.mark.parametrize("chunk_frames", [(1, 2, 4, 8), (1, 3), 5])
def test_stream_equals_generate_and_follows_the_ramp(tts, offline, chunk_frames):
    chunks = list(tts.stream("hello world, hello", chunk_frames=chunk_frames, **ARGS))
    np.testing.assert_allclose(np.concatenate([c.samples for c in chunks]), offline.samples, atol=1e-5)
    sizes = [len(c.samples) // 1920 for c in chunks]
    schedule = chunk_schedule(chunk_frames)
    expected, left = [], len(offline.codes)
    while left:
        expected.append(min(next(schedule), left))
        left -= expected[-1]
    assert sizes == expected
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.frames for c in chunks] == list(np.cumsum(sizes))
    assert all(a.elapsed <= b.elapsed for a, b in zip(chunks, chunks[1:]))


def test_first_chunk_is_one_frame(tts):
    first = next(iter(tts.stream("hello world, hello", **ARGS)))
    assert len(first.samples) == 1920 and first.frames == 1 and first.index == 0


def test_breaking_out_stops_generation_and_frees_state(tts, offline):
    stream = tts.stream("hello world, hello", **ARGS)
    for chunk in stream:
        if chunk.index == 2:
            break
    stream.close()
    # A later stream starts from clean decoder state: identical to the full offline clip.
    again = np.concatenate([c.samples for c in tts.stream("hello world, hello", **ARGS)])
    np.testing.assert_allclose(again, offline.samples, atol=1e-5)


def test_stream_validates_before_the_first_chunk(tts):
    with pytest.raises(ValueError, match="unknown speaker"):
        tts.stream("hi", speaker="nobody")
    with pytest.raises(ValueError, match="chunk_frames"):
        next(iter(tts.stream("hi", speaker="vivian", chunk_frames=(1, 0))))


def test_decode_full_causal_and_bad_shapes(tts, offline):
    np.testing.assert_allclose(tts.decode(offline.codes, full_causal=True), offline.samples, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        tts.decode(offline.codes[:, :8])


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_audio_save_round_trips(offline, tmp_path, suffix):
    path = offline.save(tmp_path / f"out{suffix}")
    data, sr = sf.read(path, dtype="float32")
    assert sr == 24000 and len(data) == len(offline.samples)
    np.testing.assert_allclose(data, offline.samples, atol=1 / 16384)
    assert not list(tmp_path.glob(".partial-*"))


def test_audio_save_rejects_unknown_format(offline, tmp_path):
    with pytest.raises(ValueError, match=".wav"):
        offline.save(tmp_path / "out.mp3")
