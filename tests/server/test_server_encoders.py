"""The streaming encoders on their own: one header per stream, bytes handed on as the audio comes
(not at the end), lossless formats exact to 16 bits, lossy ones one stream of the right length."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from mlx_qwen3tts.server.encoders import _Sink, make_encoder, mp3_frame_size, to_pcm16
from serving import aligned_correlation, decode

RAMP = [1920, 3840, 7680] + [15360] * 4  # the stream's chunk sizes: 1, 2, 4, then 8 frames


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(0)
    t = np.arange(sum(RAMP)) / 24000
    return (0.4 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 1.3 * t)
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def encode(fmt: str, samples: np.ndarray) -> tuple[bytes, list[int]]:
    """The whole stream, and how many bytes had come out after each chunk."""
    encoder = make_encoder(fmt, 24000)
    out, sizes, start = [encoder.header()], [], 0
    for size in RAMP:
        out.append(encoder.encode(samples[start:start + size]))
        start += size
        sizes.append(sum(map(len, out)))
    out.append(encoder.finish())
    return b"".join(out), sizes


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_lossless_streams_are_exact_to_16_bits(signal, fmt):
    data, sizes = encode(fmt, signal)
    np.testing.assert_allclose(decode(data, fmt), signal, atol=0.5 / 32768 + 1e-7)
    assert sizes[1] > 0 and sizes[-1] > 0.8 * len(data)  # out as it comes, not held to the end


def test_flac_comes_whole_with_its_length_and_the_wav_samples(signal):
    data, sizes = encode("flac", signal)
    assert sizes[-1] == 0 and data.startswith(b"fLaC")  # nothing before the end: the header needs the length
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 24000 and np.array_equal(audio, to_pcm16(signal))


def test_aac_is_one_adts_stream_as_it_comes(signal):
    av = pytest.importorskip("av")
    data, sizes = encode("aac", signal)
    assert 0 < sizes[1] and sizes[-1] > 0.8 * len(data)
    assert data[:2] == b"\xff\xf1"  # ADTS sync word, MPEG-4, no CRC
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.sample_rate == 24000 and stream.channels == 1
        audio = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
    lag, corr = aligned_correlation(signal, audio)
    assert lag == 1024 and corr > 0.97, (lag, corr)  # the encoder's one priming frame, once
    assert len(signal) + 1024 <= len(audio) < len(signal) + 3 * 1024


def test_a_streamed_wav_header_says_length_unknown():
    header = make_encoder("wav", 24000).header()
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt " and header[36:40] == b"data"
    assert struct.unpack("<I", header[4:8])[0] == struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<HHIIHH", header[20:36]) == (1, 1, 24000, 48000, 2, 16)


@pytest.mark.parametrize("fmt, delay", [("mp3", 1105), ("opus", 0)])
def test_lossy_streams_are_one_stream_of_the_right_length(signal, fmt, delay):
    data, sizes = encode(fmt, signal)
    audio = decode(data, fmt)
    lag, corr = aligned_correlation(signal, audio)
    assert lag == delay and corr > 0.97, (lag, corr)
    assert len(signal) <= len(audio) <= len(signal) + 2400
    # Bytes after the first 0.3 s already: libsndfile's Ogg pages would otherwise wait about 1 s.
    assert 0 < sizes[2] and sizes[-1] > 0.8 * len(data)
    if fmt == "opus":
        assert len(audio) == len(signal) and data.count(b"OpusHead") == 1 and data.count(b"OpusTags") == 1
    else:
        assert mp3_frame_size(data) == 192 and any(data[4:192])  # CBR 64 kb/s, the zeroed tag frame left out


def test_the_sink_hands_bytes_on_and_drops_late_rewrites():
    sink = _Sink()
    sink.write(b"HEADER00")
    sink.seek(6)
    sink.write(b"12")  # not sent yet: it may still change
    assert sink.take() == b"HEADER12"
    sink.write(b"data")
    sink.seek(0)
    sink.write(b"NEWHEAD")  # already sent: dropped
    assert sink.tell() == 7 and sink.seek(0, 2) == 12
    assert sink.take() == b"data"


def test_pcm16_rounds_and_clips():
    assert to_pcm16(np.array([0.0, 1 / 32768, -1.0, 1.0, 2.0, -2.0], np.float32)).tolist() == [
        0, 1, -32768, 32767, 32767, -32768]
