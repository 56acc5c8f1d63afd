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
        for frame, is_last in guarded(tts._frames(request), state, result):
            codes.append(np.asarray(frame))
            if is_last:  # the reason is known now, before the consumer sees the last frame
                outcome.reasons.append(result["finish_reason"])
                ended = True
            yield frame, is_last and final
        if not ended:
            outcome.reasons.append(result.get("finish_reason", "eos"))


def trim_silent_tail(samples: np.ndarray, rms: float, keep: int = SAMPLE_RATE // 10) -> np.ndarray:
    """Drops near-silence (and breath below `rms`) at the end, keeping `keep` samples of it."""
    window = SAMPLE_RATE // 50
    n = len(samples) // window
    if n == 0:
        return samples
    energy = np.sqrt(np.mean(np.square(samples[: n * window].reshape(n, window)), axis=1))
    loud = np.flatnonzero(energy >= rms)
    end = (loud[-1] + 1) * window + keep if len(loud) else keep
    return samples[: min(len(samples), end)]


def synthesize(tts, requests: list, *, guards: Guards, chunk_frames, trim_silence: bool = False,
               on_chunk: Callable[[AudioChunk], None] | None = None,
               started: float | None = None, outcome: Outcome | None = None,
               watch: dict | None = None) -> Iterator[AudioChunk]:
    """Streams every segment through one decoder, stopping early when a guard fires.

    The last chunk carries `finish_reason`. With `trim_silence`, near-silent chunks are held
    back and dropped if nothing audible follows them.
    """
    started = time.perf_counter() if started is None else started
    outcome = Outcome() if outcome is None else outcome
    watch = {} if watch is None else watch
    frames = segment_frames(tts, requests, guards, outcome, watch)
    chunks = stream_audio(tts._decoder(), frames, chunk_frames, started, prime=requests[0].ref_codes)
    held: list[AudioChunk] = []
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
                held.append(chunk)
                quiet = float(np.sqrt(np.mean(np.square(chunk.samples)))) < guards.silence_rms if len(chunk.samples) else True
                if quiet and not chunk.is_last:
                    continue
                if chunk.is_last:
                    chunk.samples = trim_silent_tail(np.concatenate([c.samples for c in held]), guards.silence_rms)
                    held = [chunk]
                merged = _merge(held)
                merged.index, emitted, held = emitted, emitted + 1, []
                _emit(merged, on_chunk)
                yield merged
            else:
                _emit(chunk, on_chunk)
                yield chunk
            if chunk.is_last:
                return
    finally:
        chunks.close()
        frames.close()


def _merge(held: list[AudioChunk]) -> AudioChunk:
    """Held-back quiet chunks and the chunk that ended the quiet, as one chunk."""
    last = held[-1]
    if len(held) > 1:
        last.samples = np.concatenate([c.samples for c in held])
    return last


def _emit(chunk: AudioChunk, on_chunk) -> None:
    if on_chunk is not None:
        on_chunk(chunk)
