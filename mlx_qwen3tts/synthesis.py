"""From prepared requests to audio: segments back to back, runaway guards, one continuous decoder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, AudioChunk
from .guards import GuardState, Guards, guarded
from .streaming import stream_audio

GUARD_REASONS = ("budget", "repetition", "silence")


@dataclass
class Outcome:
    """How a request ended: one finish reason per segment, and the overall one."""

    reasons: list[str] = field(default_factory=list)

    @property
    def finish_reason(self) -> str:
        faults = [r for r in self.reasons if r != "eos"]
        return faults[0] if faults else "eos"


def segment_frames(tts, requests: list, guards: Guards, outcome: Outcome,
                   watch: dict) -> Iterator[tuple[mx.array, bool]]:
    """The frames of every segment in order; `is_last` only on the very last one."""
    codes = watch.setdefault("codes", [])
    for i, request in enumerate(requests):
        state = GuardState(guards, guards.budget(request.text_tokens)) if guards.enabled else None
        watch["state"] = state
        result = {"frame_limit": request.sampling.max_new_tokens - 1}
        final = i == len(requests) - 1
        ended = False
        for frame, is_last in guarded(tts._frames(request), state, result, codes):
            if is_last:  # the reason is known now, before the consumer sees the last frame
                outcome.reasons.append(result["finish_reason"])
                ended = True
            yield frame, is_last and final
        if not ended:
            outcome.reasons.append(result.get("finish_reason", "eos"))


WINDOW = SAMPLE_RATE // 50  # 20 ms; divides a frame, so windows stay on one grid across chunks
KEEP = SAMPLE_RATE // 5  # silence kept after the last sound: a natural pause


def loud_end(samples: np.ndarray, rms: float) -> int:
    """The index just past the last 20 ms window at or above `rms` (0 if none)."""
    n = len(samples) // WINDOW
    energy = np.sqrt(np.mean(np.square(samples[: n * WINDOW].reshape(n, WINDOW)), axis=1))
    loud = np.flatnonzero(energy >= rms)
    if len(samples) > n * WINDOW and np.sqrt(np.mean(np.square(samples[n * WINDOW:]))) >= rms:
        return len(samples)
    return int(loud[-1] + 1) * WINDOW if len(loud) else 0


def synthesize(tts, requests: list, *, guards: Guards, chunk_frames, trim_silence: bool = False,
               on_chunk: Callable[[AudioChunk], None] | None = None,
               started: float | None = None, outcome: Outcome | None = None,
               watch: dict | None = None) -> Iterator[AudioChunk]:
    """Streams every segment through one decoder, stopping early when a guard fires.

    The last chunk carries `finish_reason`. With `trim_silence`, quiet audio at the end of each
    chunk is held back until something audible follows; at the end only a short pause of it
    is kept. The result does not depend on the chunk sizes.
    """
    started = time.perf_counter() if started is None else started
    outcome = Outcome() if outcome is None else outcome
    watch = {} if watch is None else watch
    frames = segment_frames(tts, requests, guards, outcome, watch)
    chunks = stream_audio(tts._decoder(), frames, chunk_frames, started, prime=requests[0].ref_codes)
    held = np.zeros(0, np.float32)  # trailing quiet audio not yet known to be a pause
    emitted = 0
    try:
        for chunk in chunks:
            state = watch.get("state")
            if state is not None and not chunk.is_last and state.audio(chunk.samples, chunk.sample_rate):
                outcome.reasons.append(state.reason)
                chunk.is_last = True
            if chunk.is_last:
                chunk.finish_reason = outcome.finish_reason
            if trim_silence:
                audio = np.concatenate([held, chunk.samples])
                end = loud_end(audio, guards.silence_rms)
                if chunk.is_last:
                    end = min(len(audio), end + KEEP)
                chunk.samples, held = audio[:end], audio[end:]
                if not len(chunk.samples) and not chunk.is_last:
                    continue
                chunk.index, emitted = emitted, emitted + 1
            _emit(chunk, on_chunk)
            yield chunk
            if chunk.is_last:
                return
    finally:
        chunks.close()
        frames.close()


def _emit(chunk: AudioChunk, on_chunk) -> None:
    if on_chunk is not None:
        on_chunk(chunk)
