"""From text to audio in stages: frames out of the loop, decoded chunks, guards and trimming.

Each stage is a generator over the stage before it and yields frozen results that carry what a
consumer needs; it builds new results rather than changing what it was handed, and closes only
its own source. Each stage is handed its collaborators (talker, decoder, guards), never the TTS.

    frames()         segments back to back, one frame guard per segment: `Frame`s, the finish
                     reason decided here and nowhere else
    decode_chunks()  one continuous decoder over every segment: `AudioChunk`s
    stop_on_silence  ends a segment that has gone silent for too long (through `Frames`)
    cut_faults()     drops a fault's frames from a whole clip, in place (trim.py)
    trim_silence()   drops the quiet the model leaves at the end of each utterance (trim.py)

The fault rule: a guard that fires ends the segment it fired in, and the next segment goes on;
the stream's finish reason is the first fault, else how its last segment ended. The frames that
belong to the fault (`bad_frames` on the segment's last frame) have been streamed already;
`cut_faults` removes them when the whole clip is wanted (`TTS.generate`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, AudioChunk
from .config import ModelConfig
from .generation import generate_frames, generation_stream, wired_limit
from .guards import FrameGuard, Guards, SilenceGuard
from .models.talker import Talker
from .request import Request, segment_prompt
from .text import Cancelled

DEFAULT_CHUNK_FRAMES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Frame:
    """One generated frame (read back once, in `frames`), or the stream's end marker."""

    codes: np.ndarray | None  # (16,) int32; None only on an end marker (nothing left to decode)
    index: int  # across the stream
    segment: int
    utterance: int
    segment_end: bool = False
    utterance_end: bool = False
    is_last: bool = False
    finish_reason: str | None = None  # where an utterance (or the stream) ends: how it ended
    bad_frames: int = 0  # on a segment's last frame: how many of its last frames are a fault's


class Frames:
    """The frames of a request, segment after segment, with one way back: `end_segment`.

    `text` is the request's `TextFeed`; cancelling it stops generation within one frame.
    `generate(prompt, sampling, seed)` runs a segment's frame loop (a batch's, say); by default
    `generate_frames` on this thread. With `generate_ahead` (a loop that starts when called and
    runs without waiting for its reader), a whole text's next `segments_ahead` segments start
    while the current one runs, one more after each frame, and are read in their turn: each
    segment's codes do not depend on the others'.
    """

    def __init__(self, talker: Talker, config: ModelConfig, request: Request, text, guards: Guards,
                 compiled: bool = True, generate=None, generate_ahead=None, segments_ahead: int = 0):
        self._args = (talker, config, request, text, guards, compiled)
        self._generate = generate or (lambda prompt, sampling, seed: generate_frames(talker, prompt, sampling,
                                                                                     seed, compiled))
        self._generate_ahead, self._segments_ahead = generate_ahead, segments_ahead
        self._source: Iterator | None = None  # the text's segments
        self._peeked: deque = deque()  # segments taken from the source ahead of their turn
        self._started: dict = {}  # their loops, by segment index
        self._stop: tuple[str, int] | None = None
        self._gen = self._frames()

    def __iter__(self) -> Iterator[Frame]:
        return self._gen

    def __next__(self) -> Frame:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def end_segment(self, reason: str, bad_frames: int) -> None:
        """Ends the current segment at its next frame (a fault found downstream, in the audio)."""
        self._stop = (reason, bad_frames)

    def _segment(self, segment, utterance_faults: list[str]) -> Iterator[Frame]:
        """One segment's frames; the last one marks the end (a marker when there are none)."""
        talker, config, request, text, guards, compiled = self._args
        guard = FrameGuard(guards, lambda: guards.budget(segment.known)) if guards.enabled else None
        limit = request.sampling.max_new_tokens - 1  # the last draw gets no residual codes
        loop = self._started.pop(segment.index, None)
        if loop is None:
            prompt = segment_prompt(talker, config, request, segment)
            loop = self._generate(prompt, request.sampling, request.seed_of(segment.index))
        codes, fault, ended, self._stop = None, None, "eos", None
        try:
            for count, (frame, last) in enumerate(loop, start=1):
                if text.cancelled:
                    raise Cancelled()
                codes = np.asarray(frame)
                fault = guard(int(codes[0])) if guard is not None else None
                if self._stop is not None:  # the frame after the silent chunk belongs to the fault too
                    fault, self._stop = (self._stop[0], self._stop[1] + 1), None
                if fault or last:
                    ended = fault[0] if fault else ("max_new_tokens" if count >= limit else "eos")
                    break
                yield Frame(codes, -1, segment.index, segment.utterance)
                self._start_ahead()
        finally:
            loop.close()
        if fault:
            utterance_faults.append(fault[0])
        segment.tokens()  # text the model never reached is dropped, as it is from a whole text
        is_last = text.is_last(segment)
        if codes is None and not (segment.ends_utterance or is_last):
            return  # no frame at all, and no boundary to mark
        reason = utterance_faults[0] if utterance_faults else ended
        yield Frame(codes, -1, segment.index, segment.utterance, True, segment.ends_utterance, is_last,
                    reason if segment.ends_utterance or is_last else None, fault[1] if fault else 0)

    def _start_ahead(self) -> None:
        """Starts the next segment of a whole text, when fewer than `segments_ahead` are started."""
        talker, config, request, text = self._args[:4]
        if self._generate_ahead is None or len(self._peeked) >= self._segments_ahead or not text.closed:
            return
        segment = next(self._source, None)
        if segment is None:
            return
        self._peeked.append(segment)
        prompt = segment_prompt(talker, config, request, segment)
        self._started[segment.index] = self._generate_ahead(prompt, request.sampling,
                                                            request.seed_of(segment.index))

    def _in_turn(self) -> Iterator:
        """The text's segments in order: those started ahead first."""
        while True:
            if self._peeked:
                yield self._peeked.popleft()
            elif (segment := next(self._source, None)) is not None:
                yield segment
            else:
                return

    def _frames(self) -> Iterator[Frame]:
        talker, config, request, text, guards, compiled = self._args
        index, utterance, faults, reason, open_utterance = 0, -1, [], "eos", False
        self._source = text.segments()
        with wired_limit(generation_stream()):
            try:
                for segment in self._in_turn():
                    if segment.utterance != utterance:
                        utterance, faults = segment.utterance, []
                    for frame in self._segment(segment, faults):
                        yield replace(frame, index=index)
                        index += frame.codes is not None
                        if frame.is_last:
                            return
                        reason = frame.finish_reason or reason
                        open_utterance = not frame.utterance_end
                if not text.spoke:
                    raise ValueError("text is empty: it has no letters or digits to speak")
            except Cancelled:
                reason = "cancelled"
            finally:
                for loop in self._started.values():  # segments started ahead and never reached
                    loop.close()
                self._started.clear()
            # The input ended (or was cancelled) after the last frame went out: an end marker.
            yield Frame(None, index, -1, utterance, True, open_utterance, True, reason)


def decode_chunks(decoder, frames: Iterable[Frame], chunk_frames: int | tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
                  started: float | None = None, left_context: np.ndarray | None = None) -> Iterator[AudioChunk]:
    """Decodes frames into `AudioChunk`s as soon as each chunk is full, through one decoder.

    Chunk sizes follow `chunk_frames`, starting again after every segment (a segment's end
    closes a chunk, so the audio after a new prefill comes out fast). `left_context` codes
    (frames, 16) go through the decoder first, their audio dropped. The decoder's streaming
    state is reset before and after, also when the consumer stops early.
    """
    started = time.perf_counter() if started is None else started
    schedule = chunk_schedule(chunk_frames)
    want, pending, total, index = next(schedule), [], 0, 0
    decoder.reset_state()
    try:
        if left_context is not None and len(left_context):
            mx.eval(decoder.step(mx.array(np.asarray(left_context, np.int32))[None]))
        for frame in frames:
            if frame.codes is not None:
                pending.append(frame.codes)
                total += 1
            if frame.finish_reason == "cancelled":
                pending = []  # a cancelled stream stops now: nothing more is decoded
            if len(pending) < want and not frame.segment_end:
                continue
            codes = np.stack(pending) if pending else np.zeros((0, 16), np.int32)
            if pending:
                samples = np.asarray(decoder.step(mx.array(codes)[None])[0], dtype=np.float32)
            else:
                samples = np.zeros(0, np.float32)
            yield AudioChunk(samples, SAMPLE_RATE, index, frame.is_last, total, time.perf_counter() - started,
                             frame.finish_reason, frame.utterance, frame.utterance_end, frame.segment_end,
                             frame.bad_frames, codes)
            if frame.is_last:
                return
            pending, index = [], index + 1
            if frame.segment_end:
                schedule = chunk_schedule(chunk_frames)
            want = next(schedule)
    finally:
        decoder.reset_state()
        close_source(frames)


def close_source(source) -> None:
    """Closes a stage's source (if it can be closed)."""
    # Each stage closes its own source, which stops the stages (and the generation) before it.
    close = getattr(source, "close", None)
    if close is not None:
        close()


def chunk_schedule(chunk_frames: int | tuple[int, ...] | list[int]) -> Iterator[int]:
    """Frames per chunk: the ramp as given, then its last size for ever."""
    sizes = (chunk_frames,) if isinstance(chunk_frames, int) else tuple(chunk_frames)
    if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"chunk_frames must be positive frame counts, got {chunk_frames!r}")
    yield from sizes
    while True:
        yield sizes[-1]


def stop_on_silence(chunks: Iterator[AudioChunk], guards: Guards, frames: Frames) -> Iterator[AudioChunk]:
    """Passes chunks on; a segment gone silent for too long after speech is ended upstream."""
    guard = SilenceGuard(guards)
    try:
        for chunk in chunks:
            if chunk.segment_end:
                guard = SilenceGuard(guards)  # one watch per segment
            elif fault := guard(chunk.samples, chunk.sample_rate):
                frames.end_segment(*fault)
            yield chunk
    finally:
        close_source(chunks)
