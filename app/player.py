"""Live playback: one sounddevice output stream drained from a ring buffer."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from mlx_qwen3tts import SAMPLE_RATE

from .device import NoOutputDevice, load_sounddevice

log = logging.getLogger(__name__)


def fade_curve(n: int) -> np.ndarray:
    """A half-cosine rise over `n` samples that never reaches exactly 0 or 1."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def prebuffer_seconds(rtf: float, remaining: float, chunk: float) -> float:
    """Seconds of audio to buffer before playing so that playback does not run dry.

    Args:
        rtf: measured generation time per second of audio.
        remaining: seconds of audio still to be generated.
        chunk: length of the latest chunk in seconds.
    """
    # Generation takes rtf seconds per second of audio while playback takes 1, so over the
    # `remaining` seconds still to come the buffer shrinks by remaining * (rtf - 1): that much must
    # be there at the start (none when faster than real time). On top, the buffer must last until
    # the next chunk lands, about rtf * 2 * chunk (chunk sizes double while a stream ramps up).
    return max(0.0, remaining * (rtf - 1.0)) + rtf * 2.0 * chunk


class Player:
    """Plays float32 mono audio written from another thread, starting as soon as it can without gaps.

    One `sounddevice.OutputStream` lives as long as the player; its callback copies from a
    preallocated ring buffer and plays silence while waiting for data. Write a whole utterance
    with `write()` (any chunk sizes), then call `finish()` and `drain()`. A fade of
    `fade_seconds` is applied only to the first and last samples of an utterance.

    Args:
        sample_rate: samples per second of what is written.
        device: sounddevice output device (index or name); None for the default.
        buffer_seconds: ring capacity; `write()` blocks while it is full.
        fade_seconds: fade-in / fade-out length at the ends of an utterance and on `stop()`.
        lookahead: seconds of speech assumed still to come when `expect()` was not called.
        latency, blocksize: passed to `sounddevice.OutputStream`.
        tap: called from the audio thread with a copy of every block handed to the device.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        *,
        device: int | str | None = None,
        buffer_seconds: float = 60.0,
        fade_seconds: float = 0.005,
        lookahead: float = 5.0,
        latency: float | str = "low",
        blocksize: int = 0,
        tap: Callable[[np.ndarray], None] | None = None,
    ):
        self.sample_rate = sample_rate
        self.device = device
        self.lookahead = lookahead
        self.fade_len = max(1, int(fade_seconds * sample_rate))
        self._fade = fade_curve(self.fade_len)
        self._latency, self._blocksize, self._tap = latency, blocksize, tap
        self._buf = np.zeros(max(int(buffer_seconds * sample_rate), 1), dtype=np.float32)
        # A plain lock, no Condition or Event: a Ctrl-C landing in Condition.__exit__ (Python code)
        # left the lock held, and stop() and the audio callback then waited for it forever.
        self._lock = threading.Lock()
        self._stream = None
        self._read = self._write = 0  # absolute sample counters; the ring index is counter % size
        self._stopping = False
        self.underruns = 0  # times playback ran dry before the producer finished
        self.device_underflows = 0  # times PortAudio itself reported an output underflow
        self.delivered = 0  # samples handed to the device
        self.started_at: float | None = None  # perf_counter() when sound first started
        self._new_utterance()

    def _new_utterance(self) -> None:
        self._finished = False
        self._playing = self._write > self._read  # the previous utterance's tail keeps playing
        self._fade_in_left = self.fade_len
        self._first_t = self._last_t = 0.0
        self._first_len = self._last_len = self._produced = self._writes = 0
        self._expected: float | None = None
        self._done = False  # everything written has been played (or cut by stop())

    # -- stream lifetime -------------------------------------------------------------------

    def open(self) -> Player:
        """Opens and starts the output stream; raises `NoOutputDevice` if that fails."""
        if self._stream is not None:
            return self
        sd = load_sounddevice()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32", device=self.device,
                latency=self._latency, blocksize=self._blocksize, callback=self._callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as e:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            raise NoOutputDevice(f"cannot open the audio output ({e})") from None
        log.debug("output stream open: %s, latency %.3f s", self.device, self._stream.latency)
        return self

    def close(self) -> None:
        """Stops the stream after what the device already holds, and releases it."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def __enter__(self) -> Player:
        return self.open()

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            self.stop()
        self.close()

    # -- producer side ---------------------------------------------------------------------

    def expect(self, seconds: float | None) -> None:
        """Tells the player how long the whole utterance will probably be (sizes the prebuffer)."""
        with self._lock:
            self._expected = seconds
            self._maybe_start()

    def write(self, samples: np.ndarray) -> None:
        """Queues samples to play after everything written before; blocks while the ring is full."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        with self._lock:
            if self._finished:
                self._new_utterance()
            now = time.perf_counter()
            if self._writes == 0:
                self._first_t, self._first_len = now, x.size
            self._last_t, self._last_len = now, x.size
            self._writes += 1
            self._produced += x.size
        pos = 0
        while True:
            with self._lock:
                if self._stopping:
                    return
                piece = x[pos : pos + self._buf.size - (self._write - self._read)]
                if self._fade_in_left and piece.size:
                    k = self.fade_len - self._fade_in_left
                    m = min(self._fade_in_left, piece.size)
                    piece = piece.copy()
                    piece[:m] *= self._fade[k : k + m]
                    self._fade_in_left -= m
                self._put(piece)
                pos += piece.size
                if pos == x.size:
                    self._maybe_start()
                    return
                # A full ring must play whatever the estimate says, or nothing ever moves.
                self._start()
            time.sleep(0.01)  # the ring is full: let the callback free space, the lock released

    def finish(self) -> None:
        """Marks the end of the utterance: fades its tail and lets playback run to the end."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            m = min(self.fade_len, self._write - self._read)
            if m:
                idx = np.arange(self._write - m, self._write) % self._buf.size
                self._buf[idx] *= fade_curve(m)[::-1]
            self._start()

    def drain(self, timeout: float | None = None) -> bool:
        """Waits until everything written has been played; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done:
            if self._stream is None or not self._stream.active:
                return self._write == self._read
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        if self._stream is not None:
            time.sleep(min(self._stream.latency, 0.5))  # what the device still holds
        return True

    def stop(self) -> None:
        """Cuts playback now: a short fade-out, then silence; the stream is closed."""
        with self._lock:
            self._stopping = True
        deadline = time.monotonic() + 0.1  # for the callback's fade-out
        while not self._done and self._stream is not None and self._stream.active and time.monotonic() < deadline:
            time.sleep(0.005)
        self.close()
        self._done = True

    # -- consumer side (audio thread) ------------------------------------------------------

    def _start(self) -> None:
        if not self._playing:
            self._playing = True
            if self.started_at is None:
                self.started_at = time.perf_counter()

    def _maybe_start(self) -> None:
        if not self._playing and (self._finished or self.buffered_seconds >= self._needed_seconds()):
            self._start()

    def _needed_seconds(self) -> float:
        if self._writes < 2:
            return math.inf  # no speed measured yet: the first chunk also carries the prompt latency
        sr = self.sample_rate
        rtf = (self._last_t - self._first_t) / ((self._produced - self._first_len) / sr)
        produced = self._produced / sr
        remaining = self.lookahead if self._expected is None else max(self._expected - produced, 0.5)
        return prebuffer_seconds(rtf, remaining, self._last_len / sr)

    @property
    def buffered_seconds(self) -> float:
        return (self._write - self._read) / self.sample_rate

    def _put(self, x: np.ndarray) -> None:
        size, i = self._buf.size, self._write % self._buf.size
        k = min(x.size, size - i)
        self._buf[i : i + k] = x[:k]
        self._buf[: x.size - k] = x[k:]
        self._write += x.size

    def _get(self, out: np.ndarray, n: int) -> None:
        size, i = self._buf.size, self._read % self._buf.size
        k = min(n, size - i)
        out[:k] = self._buf[i : i + k]
        out[k:n] = self._buf[: n - k]
        self._read += n

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        out = outdata[:, 0]
        n = 0
        with self._lock:
            if status.output_underflow:
                self.device_underflows += 1
            available = self._write - self._read
            if self._stopping:
                if self._playing:
                    n = min(frames, available, self.fade_len)
                    self._get(out, n)
                    out[:n] *= fade_curve(n)[::-1] if n else 1.0
                    self._playing = False
                self._read = self._write
                self._done = True
            elif self._playing:
                n = min(frames, available)
                self._get(out, n)
                if n < frames:
                    if self._finished:
                        self._done = True
                    else:
                        self.underruns += 1
                        self._playing = False  # wait for the buffer to refill, see _needed_seconds
            self.delivered += n
        out[n:] = 0
        if self._tap is not None:
            self._tap(out.copy())
