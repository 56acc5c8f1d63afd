"""The reference's offline decode: all frames first, then the codec over 300-frame windows.

Only `TTS.decode` (or `generate(..., decode="reference")`) takes this path; every
other way of making audio decodes as it streams, through one causal decoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, Audio, AudioChunk
from .codec import chunked_decode
from .guards import GUARD_REASONS
from .pipeline import Frame
from .trim import trim_silence


def without_faults(frames: list[Frame]) -> np.ndarray:
    """The frames' codes (frames, 16) less each segment's faulty last ones (`bad_frames`)."""
    kept: list[np.ndarray] = []
    segment: list[np.ndarray] = []
    for frame in frames:
        if frame.codes is not None:
            segment.append(frame.codes)
        if frame.segment_end or frame.is_last:
            kept += segment[:len(segment) - frame.bad_frames] if frame.bad_frames else segment
            segment = []
    kept += segment
    return np.stack(kept).astype(np.int32) if kept else np.zeros((0, 16), np.int32)


def offline_audio(decode: Callable[[np.ndarray], np.ndarray], frames: list[Frame], ref_codes: np.ndarray | None,
                  trim_rms: float | None, started: float) -> Audio:
    """A whole clip from a request's frames: `decode` (the windowed codec) after the in-context
    reference codes if any, their share cut off as the reference does; quiet trimmed at the end
    when `trim_rms` is given."""
    codes = without_faults(frames)
    if not len(codes):
        samples = np.zeros(0, np.float32)
    elif ref_codes is not None:
        both = decode(np.concatenate([ref_codes, codes]))
        samples = both[int(len(ref_codes) / (len(ref_codes) + len(codes)) * len(both)):]
    else:
        samples = decode(codes)
    if trim_rms is not None:
        whole = AudioChunk(samples, SAMPLE_RATE, 0, True, len(codes), 0.0, end_of_utterance=True)
        samples = next(trim_silence(iter([whole]), trim_rms)).samples
    reasons = [f.finish_reason for f in frames if f.finish_reason]
    faults = [r for r in reasons if r in GUARD_REASONS]
    reason = faults[0] if faults else (reasons[-1] if reasons else "eos")
    return Audio(samples, SAMPLE_RATE, codes, time.perf_counter() - started, reason)


def decode_codes(decoder, codes: np.ndarray, full_causal: bool = False) -> np.ndarray:
    """Codes (frames, 16) -> float32 waveform: the reference's 300-frame windows, or with
    `full_causal` the whole clip at once (what streaming gives). Runs on the model's thread."""
    x = mx.array(codes)[None]
    # A copy, so the MLX buffer goes now and the cache is cleared of it too.
    wav = np.array((decoder(x) if full_causal else chunked_decode(decoder, x))[0], dtype=np.float32)
    mx.clear_cache()  # a window's transients can be a GB
    return wav
