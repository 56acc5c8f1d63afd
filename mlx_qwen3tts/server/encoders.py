"""Streaming audio encoders: one per response, fed each chunk as it is made.

Every format is one continuous stream with one header: `pcm` is raw 16-bit little-endian mono,
`wav` carries the usual unknown-length header (sizes 0xFFFFFFFF), `mp3` and `opus` (Ogg
Opus, as OpenAI's `opus` is) come from libsndfile writing into a sink that hands its bytes on
as soon as they are written (what libsndfile rewrites at the end, a header's totals, has gone
out already and is dropped), and `aac` is ADTS from PyAV (aac.py).

`flac` alone is sent whole, at the end: its header must carry the length, which a stream
cannot know at its start, and libsndfile (so soundfile) reads a FLAC without one as
2**63 frames long, which `soundfile.read()` refuses.
"""

from __future__ import annotations

import logging
import struct

import numpy as np

logger = logging.getLogger(__name__)

MEDIA_TYPES = {"pcm": "audio/pcm", "pcm_f32": "audio/pcm", "wav": "audio/wav", "flac": "audio/flac",
               "mp3": "audio/mpeg", "opus": "audio/ogg; codecs=opus", "aac": "audio/aac"}
HTTP_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")  # OpenAI's list, in its order
OGG_PAGE_LATENCY_MS = 20.0  # libsndfile holds Ogg pages for about a second unless told otherwise
_SFC_SET_OGG_PAGE_LATENCY_MS = 0x1302  # sndfile.h; soundfile has no wrapper for it


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16, scaled by 32768 and clipped (soundfile reads it back as /32768)."""
    return np.clip(np.rint(np.asarray(samples, np.float32) * 32768.0), -32768, 32767).astype("<i2")


class Encoder:
    """Raw 16-bit little-endian PCM; the base of the others."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate

    def header(self) -> bytes:
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        return to_pcm16(samples).tobytes()

    def finish(self) -> bytes:
        return b""


class PCMFloat(Encoder):
    """Raw 32-bit float little-endian PCM (the WebSocket's `pcm_f32`)."""

    def encode(self, samples: np.ndarray) -> bytes:
        return np.asarray(samples, "<f4").tobytes()


class WavStream(Encoder):
    """16-bit PCM WAV whose RIFF and data sizes say "unknown" (0xFFFFFFFF), as streamed WAV does."""

    def header(self) -> bytes:
        rate = self.sample_rate
        fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, 16-bit
        return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                + b"data" + struct.pack("<I", 0xFFFFFFFF))


class WholeFlac(Encoder):
    """16-bit FLAC written once the audio is complete, so that its header holds the length."""

    def __init__(self, sample_rate: int):
        super().__init__(sample_rate)
        self._parts: list[np.ndarray] = []

    def encode(self, samples: np.ndarray) -> bytes:
        self._parts.append(to_pcm16(samples))
        return b""

    def finish(self) -> bytes:
        import io

        import soundfile as sf

        out = io.BytesIO()
        samples = np.concatenate(self._parts) if self._parts else np.zeros(0, "<i2")
        sf.write(out, samples, self.sample_rate, format="FLAC", subtype="PCM_16")
        return out.getvalue()


class _Sink:
    """A write-only file for libsndfile: bytes past what was sent wait in `pending` until taken;
    a write into bytes already sent (a header rewritten at close) is dropped."""

    def __init__(self):
        self._pos = self._size = self._sent = 0
        self._pending = bytearray()

    def write(self, data) -> int:
        data = bytes(data)
        start, end = self._pos, self._pos + len(data)
        if end > self._sent:
            skip = max(0, self._sent - start)
            offset = start + skip - self._sent
            if offset + len(data) - skip > len(self._pending):
                self._pending.extend(bytes(offset + len(data) - skip - len(self._pending)))
            self._pending[offset:offset + len(data) - skip] = data[skip:]
        elif data:
            logger.debug("dropped a %d-byte rewrite at %d: that part was sent already", len(data), start)
        self._pos, self._size = end, max(self._size, end)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self._size + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._sent += len(out)
        self._pending.clear()
        return out


class SoundFileEncoder(Encoder):
    """MP3 or Ogg Opus through libsndfile, incrementally."""

    FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}

    def __init__(self, sample_rate: int, fmt: str, **options):
        import soundfile as sf

        super().__init__(sample_rate)
        self.fmt = fmt
        self._sink = _Sink()
        major, subtype = self.FORMATS[fmt]
        self._file = sf.SoundFile(self._sink, mode="w", samplerate=sample_rate, channels=1, format=major,
                                  subtype=subtype, **options)
        if fmt == "opus":
            _set_ogg_page_latency(sf, self._file, OGG_PAGE_LATENCY_MS)

    def encode(self, samples: np.ndarray) -> bytes:
        if len(samples):
            self._file.write(np.clip(np.asarray(samples, np.float32), -1, 1))
        return self._sink.take()

    def finish(self) -> bytes:
        self._file.close()
        return self._sink.take()


class Mp3Encoder(SoundFileEncoder):
    """Constant-bitrate MP3 (64 kb/s at 24 kHz) without LAME's tag frame.

    LAME writes its Xing/Info frame first as zeros and fills it in at the end, which a stream
    cannot do: sent as zeros it only decodes as a frame of silence, so it is left out. Without
    it a decoder has the first frame's bitrate to go by (libsndfile's mpg123 sizes the stream
    from it), which is right only when every frame has that bitrate.
    """

    def __init__(self, sample_rate: int):
        super().__init__(sample_rate, "mp3", bitrate_mode="CONSTANT", compression_level=0.6)
        self._held: bytes | None = b""  # the stream's start, until its first frame is whole

    def encode(self, samples: np.ndarray) -> bytes:
        return self._strip(super().encode(samples))

    def finish(self) -> bytes:
        return self._strip(super().finish(), final=True)

    def _strip(self, data: bytes, final: bool = False) -> bytes:
        if self._held is None:
            return data
        head = self._held + data
        size = mp3_frame_size(head)
        if size is not None and len(head) >= size:
            self._held = None
            return head if any(head[4:size]) else head[size:]  # drop the zeroed tag frame only
        if not final and len(head) < 4096:
            self._held = head
            return b""
        self._held = None
        return head


_MP3_BITRATES = {1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
                 2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_size(data: bytes) -> int | None:
    """The byte length of the MPEG Layer III frame at the start of `data`, or None if it is not one."""
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0 or ((data[1] >> 1) & 3) != 1:
        return None
    version, rate_index, bitrate_index = (data[1] >> 3) & 3, (data[2] >> 2) & 3, data[2] >> 4
    if version == 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    bitrate = _MP3_BITRATES[1 if version == 3 else 2][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    return (144 if version == 3 else 72) * bitrate // rate + ((data[2] >> 1) & 1)


def _set_ogg_page_latency(sf, handle, ms: float) -> None:
    try:
        value = sf._ffi.new("double*", ms)
        sf._snd.sf_command(handle._file, _SFC_SET_OGG_PAGE_LATENCY_MS, value, sf._ffi.sizeof("double"))
    except Exception as e:  # a soundfile without these internals: pages come about once a second
        logger.warning("cannot shorten the Ogg page latency (%s); opus streams in ~1 s steps", e)


def unavailable(fmt: str) -> str | None:
    """Why `fmt` cannot be made here (a library it needs is missing), or None."""
    if fmt == "aac":
        try:
            import av  # noqa: F401
        except ImportError:
            return "aac needs PyAV, which is not installed: pip install 'mlx-qwen3tts[server]' (or pip install av)"
    return None


def make_encoder(fmt: str, sample_rate: int) -> Encoder:
    if fmt == "pcm":
        return Encoder(sample_rate)
    if fmt == "pcm_f32":
        return PCMFloat(sample_rate)
    if fmt == "wav":
        return WavStream(sample_rate)
    if fmt == "flac":
        return WholeFlac(sample_rate)
    if fmt == "mp3":
        return Mp3Encoder(sample_rate)
    if fmt == "aac":
        from .aac import AacEncoder

        return AacEncoder(sample_rate)
    if fmt in SoundFileEncoder.FORMATS:
        return SoundFileEncoder(sample_rate, fmt)
    raise ValueError(f"unknown audio format {fmt!r}")
