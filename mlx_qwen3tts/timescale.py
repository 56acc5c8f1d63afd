"""Speaking rate: a stage that plays a stream's chunks `speed` times as fast, pitch kept.

The time-scaling is Rubber Band's (through `pylibrb`, the `speed` extra) in its real-time
mode: audio goes in chunk by chunk and comes out as it is ready, so a stream at speed 0.5 or
2 still starts after its first frame. Each utterance is stretched on its own and flushed at
its end, so an utterance's audio is whole when its last chunk is, and its length is exactly
its input's / speed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np

from .audio import AudioChunk
from .checks import check_float

MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range
BLOCK = 2048  # samples per call into the stretcher (Rubber Band's buffers are sized for it)


def check_speed(speed) -> float:
    """`speed` as a float, or a ValueError (TypeError too, for a wrong type) that names it and its
    range: the one check of the option, for `SpeechOptions` and this stage alike."""
    return check_float("speed", speed, MIN_SPEED, MAX_SPEED, "a number from 0.25 to 4.0",
                       "1.0 is the model's own pace, 2.0 twice as fast")


def speed_stage(speed) -> float:
    """Checks `speed` (and, off 1, that the library is there) before a stream starts."""
    speed = check_speed(speed)
    if speed != 1.0:
        _library()
    return speed


def _library():
    try:
        import pylibrb
    except ImportError:
        raise ImportError("speed other than 1 needs Rubber Band's bindings: pip install 'mlx-qwen3tts[speed]' "
                          "(pylibrb; wheels for macOS arm64 and Linux x86_64)") from None
    pylibrb.set_default_logging_level(0)  # its buffer notes go to stderr otherwise
    return pylibrb


class Stretcher:
    """One utterance through Rubber Band in real time: `push` samples, then `finish`."""

    def __init__(self, speed: float, sample_rate: int):
        rb = _library()
        options = (rb.Option.PROCESS_REALTIME | rb.Option.ENGINE_FINER | rb.Option.WINDOW_SHORT
                   | rb.Option.FORMANT_PRESERVED | rb.Option.CHANNELS_TOGETHER)
        self.speed = speed
        self._rb = rb.RubberBandStretcher(sample_rate, 1, options, 1.0 / speed, 1.0)
        self._rb.set_max_process_size(BLOCK)
        self._skip = self._rb.get_start_delay()  # output samples before the audio's start
        self._taken = 0  # input samples
        self._made = 0  # output samples handed on
        self._held = np.zeros(0, np.float32)  # output made ahead of the input's pace
        self._rb.process(np.zeros((1, self._rb.get_preferred_start_pad()), np.float32))

    def _retrieve(self) -> np.ndarray:
        out = self._rb.retrieve_available()[0] if self._rb.available() > 0 else np.zeros(0, np.float32)
        if self._skip:
            cut = min(self._skip, len(out))
            out, self._skip = out[cut:], self._skip - cut
        return out

    def push(self, samples: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(samples), BLOCK):
            self._rb.process(np.ascontiguousarray(samples[None, start:start + BLOCK], np.float32))
            parts.append(self._retrieve())
        self._taken += len(samples)
        return self._hand_on(parts, final=False)

    def finish(self) -> np.ndarray:
        self._rb.process(np.zeros((1, 0), np.float32), final=True)
        parts = []
        while not self._rb.is_done():
            parts.append(self._retrieve())
        return self._hand_on(parts, final=True)

    def _hand_on(self, parts: list[np.ndarray], final: bool) -> np.ndarray:
        ready = np.concatenate([self._held, *parts])
        due = round(self._taken / self.speed) - self._made
        if final:  # exactly input / speed: Rubber Band's last block may run a few samples long or short
            out, self._held = np.pad(ready, (0, max(0, due - len(ready))))[:due], ready[:0]
        else:  # never ahead of what the whole will be: the rest waits for the next chunk
            out, self._held = ready[:max(0, due)], ready[max(0, due):]
        self._made += len(out)
        return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)

def time_scaled(chunks: Iterable[AudioChunk], speed: float) -> Iterator[AudioChunk]:
    """The stream's chunks played `speed` times as fast; the chunks keep their fields."""
    speed = check_speed(speed)
    stretcher: Stretcher | None = None
    for chunk in chunks:
        if stretcher is None:
            stretcher = Stretcher(speed, chunk.sample_rate)
        samples = stretcher.push(chunk.samples)
        if chunk.end_of_utterance or chunk.is_last:
            samples = np.concatenate([samples, stretcher.finish()])
            stretcher = None
        yield dataclasses.replace(chunk, samples=samples)
