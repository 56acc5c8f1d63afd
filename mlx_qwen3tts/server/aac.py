"""AAC as one ADTS stream, through PyAV (FFmpeg's native AAC encoder).

libsndfile has no AAC, so `aac` comes from PyAV: it has wheels for macOS arm64 and Linux with
FFmpeg inside, and its `adts` muxer writes a self-framed stream (each 1024-sample frame has
its own header), so the bytes can go out as they are made and any prefix plays.
"""

from __future__ import annotations

import io

import numpy as np

from .encoders import Encoder

FRAME_SAMPLES = 1024  # one AAC-LC frame
BIT_RATE = 64_000


class _Collect(io.RawIOBase):
    """Where the muxer writes; taken as it comes."""

    def __init__(self):
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pending += bytes(data)
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._pending.clear()
        return out


class AacEncoder(Encoder):
    """AAC-LC in ADTS frames, mono at the stream's rate."""

    def __init__(self, sample_rate: int):
        import av

        super().__init__(sample_rate)
        self._av = av
        self._sink = _Collect()
        self._container = av.open(self._sink, mode="w", format="adts")
        self._stream = self._container.add_stream("aac", rate=sample_rate, layout="mono")
        self._stream.bit_rate = BIT_RATE
        self._held = np.zeros(0, np.float32)  # samples short of a whole frame
        self._pts = 0

    def _frame(self, samples: np.ndarray) -> None:
        frame = self._av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = self.sample_rate, self._pts
        self._pts += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def encode(self, samples: np.ndarray) -> bytes:
        data = np.concatenate([self._held, np.clip(np.asarray(samples, np.float32), -1, 1)])
        whole = len(data) - len(data) % FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            self._frame(np.ascontiguousarray(data[start:start + FRAME_SAMPLES]))
        self._held = data[whole:]
        return self._sink.take()

    def finish(self) -> bytes:
        if len(self._held):
            self._frame(np.ascontiguousarray(self._held))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()
