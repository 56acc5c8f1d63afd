"""`TTS`: the public API over a loaded checkpoint; each method composes the pipeline's stages."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from dataclasses import replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from . import lanes
from .audio import SAMPLE_RATE, Audio, AudioChunk
from .batch import BatchEngine
from .checks import OptionError
from .codec.encoder import load_speech_encoder
from .config import ModelConfig
from .decoder_pool import DecoderPool
from .generation import generate_frames
from .guards import GUARD_REASONS, Guards
from .models.qwen3_tts import Model
from .offline import decode_codes, offline_audio
from .options import SpeechOptions, speech_options
from .pipeline import Frames, decode_chunks, stop_on_silence
from .trim import cut_faults
from .trim import trim_silence as trim_quiet
from .request import FixedText, Prepared, Request, build_request, check_options, segment_prompt
from .sampling import SamplingConfig
from .text import TextFeed, as_feed, text_tokens
from .timescale import speed_stage, time_scaled
from .tokenizer import TextTokenizer
from .voice import Voice, clone

logger = logging.getLogger(__name__)

Text = str | TextFeed | Iterable[str]
DEFAULT_SEGMENTS_AHEAD = 2


def _stack(frames) -> np.ndarray:
    rows = [f.codes for f in frames if f.codes is not None]
    return np.stack(rows).astype(np.int32) if rows else np.zeros((0, 16), np.int32)


def _returning(chunks: Iterator[AudioChunk], done: Callable[[], None]) -> Iterator[AudioChunk]:
    """`chunks`, then `done()` once they are over (exhausted, failed or closed)."""
    try:
        yield from chunks
    finally:
        chunks.close()
        done()


class TTS:
    """A loaded Qwen3-TTS checkpoint: make codes (and, with the codec, audio) from text.

    Every method may be called from any thread, and a stream made on one thread may be read on
    another: the model's work runs on a thread of the TTS's own. Generations running at the same
    time advance together as one batch (`batch`), each with exactly the codes it would get alone.
    """

    def __init__(self, model: Model, tokenizer: TextTokenizer, sampling: SamplingConfig,
                 path: Path | None = None, speech_decoder=None):
        self.model = model
        self.config: ModelConfig = model.config
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.path = path
        self.speech_decoder = speech_decoder
        self._speech_encoder = None
        self._worker = lanes.shared()
        self._engine: BatchEngine | None = None
        # A long text's next segments run in the batch beside the one being heard (same codes).
        self.segments_ahead = DEFAULT_SEGMENTS_AHEAD
        self._engine_lock = threading.Lock()
        self._decoders = None if speech_decoder is None else DecoderPool(speech_decoder)

    @property
    def kind(self) -> str:
        return self.config.tts_model_type

    @property
    def speakers(self) -> list[str]:
        return self.config.speakers

    @property
    def languages(self) -> list[str]:
        return self.config.languages

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def __repr__(self) -> str:
        return f"TTS(kind={self.kind!r}, size={self.config.tts_model_size!r}, path={str(self.path)!r})"

    # -- requests ---------------------------------------------------------------------------

    def options(self, options: SpeechOptions | None = None, /, **kw) -> SpeechOptions:
        """Checked options for this model: `SpeechOptions(**kw)` (or `options` with `kw` changed),
        also checked against its speakers, languages and kind. Every method takes the result,
        or the same keywords. A bad value raises ValueError (TypeError for a wrong type) that
        names the option (`e.option`) and says what it takes."""
        if options is not None and not isinstance(options, SpeechOptions):
            raise TypeError(f"options must be a SpeechOptions (tts.options(...)), not {type(options).__name__}")
        return check_options(self.config, speech_options(**kw) if options is None else options.with_values(**kw))

    def _request(self, options: SpeechOptions, text: Text | None = None) -> Request:
        # Text written as it comes (a feed, pieces) is live; a str, or a feed made from one, is whole.
        live = not (isinstance(text, str) or getattr(text, "whole", False))
        return build_request(self.config, self.tokenizer, self.sampling, options, live=live)

    def _feed(self, text: Text, max_segment_tokens: int) -> TextFeed:
        return as_feed(text, self.tokenizer, max_segment_tokens)

    def prepare(self, text: str, options: SpeechOptions | None = None, /, **kw) -> Prepared:
        """Checks one request and builds its prompt vectors (no generation, no segmenting)."""
        request = self._request(self.options(options, **kw), text)
        tokens = text_tokens(self.tokenizer, text)
        prompt = segment_prompt(self.model.talker, self.config, request, FixedText(tokens))
        return Prepared(prompt, request.sampling, request.seed)

    def iter_frames(self, text: str, options: SpeechOptions | None = None, /,
                    **kw) -> Iterator[tuple[np.ndarray, bool]]:
        """The raw generation loop for one request: `(codes, is_last)` per frame ((16,) int32),
        with no guards and no segmenting."""
        request = self._request(self.options(options, **kw), text)
        tokens = text_tokens(self.tokenizer, text)

        def frames():
            prompt = segment_prompt(self.model.talker, self.config, request, FixedText(tokens))
            for frame, last in generate_frames(self.model.talker, prompt, request.sampling, request.seed):
                yield np.asarray(frame), last

        return self._run(frames)

    # -- the generation thread ---------------------------------------------------------------

    @property
    def batch(self) -> BatchEngine:
        """The batch every generation of this TTS runs in (`batch.max_batch` streams at most
        step together; more wait for a place)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = BatchEngine(self.model.talker)
            return self._engine

    def _release(self) -> None:
        # Transients of a request (an offline decode's window can be a GB) go back to the system.
        self._worker.call(mx.clear_cache)

    def _run(self, make: Callable[[], Iterator], feed: TextFeed | None = None) -> Iterator:
        return self._worker.iterate(make, after=self._release, cancel=None if feed is None else feed.cancel)

    def _frames(self, request: Request, feed: TextFeed, guards: Guards) -> Frames:
        engine = self.batch
        return Frames(self.model.talker, self.config, request, feed, guards, generate=engine.frames,
                      generate_ahead=partial(engine.frames, ahead=None), segments_ahead=self.segments_ahead)

    def _chunks(self, request: Request, feed: TextFeed, options: SpeechOptions, started: float,
                trim: bool) -> Iterator[AudioChunk]:
        """The one path from frames to audio: `stream` and `generate` decode through it."""
        guards = options.guards
        frames = self._frames(request, feed, guards)
        self._decoder()  # fails now without a speech tokenizer
        decoder = self._decoders.take()  # a stream's decoder state is its own
        chunks = decode_chunks(decoder, frames, options.chunk_frames, started, request.ref_codes)
        chunks = stop_on_silence(chunks, guards, frames) if guards.enabled else chunks
        chunks = trim_quiet(chunks, guards.silence_rms) if trim else chunks
        chunks = chunks if options.speed == 1.0 else time_scaled(chunks, options.speed)
        return _returning(chunks, lambda: self._decoders.give(decoder))

    # -- generation ------------------------------------------------------------------------

    def generate_codes(self, text: Text, options: SpeechOptions | None = None, /, **kw) -> np.ndarray:
        """Generates the codec codes for `text`: int32 array (frames, 16).

        `options` (from `tts.options(...)`) or the same keywords (`SpeechOptions` lists them:
        speaker, language, instruct, voice, text_layout, seed, the sampling knobs, guards, ...);
        unset sampling values default to the checkpoint's generation_config.json. Texts over
        `max_segment_tokens` are generated sentence group by sentence group.
        """
        options = self.options(options, **kw)
        request = self._request(options, text)
        feed = self._feed(text, options.max_segment_tokens)
        return _stack(self._run(lambda: iter(self._frames(request, feed, options.guards)), feed))

    def generate(self, text: Text, options: SpeechOptions | None = None, /, *,
                 on_chunk: Callable[[AudioChunk], None] | None = None, **kw) -> Audio:
        """Speaks `text` (options as in `generate_codes`) and returns the whole clip: the audio
        `stream()` gives, whatever watches it.

        `on_chunk(chunk)` is called with each piece as soon as it is decoded. A segment stopped
        by a guard keeps its audio before the fault and says why in `finish_reason`; `retries`
        runs a text again (with the next seed) that many times first. Only `decode="reference"`
        decodes otherwise: all frames first, then the reference's offline 300-frame windows.
        """
        options = self.options(options, **kw)
        speed_stage(options.speed)  # off 1, the time-scale library must be there
        if options.decode == "reference":
            if on_chunk is not None:
                raise ValueError("on_chunk needs decode='stream': decode='reference' decodes once, at the end")
            if options.speed != 1.0:
                raise OptionError("speed", "speed needs decode='stream': decode='reference' is the official "
                                           "implementation's audio, at its own pace")
            return self._generate_like_reference(text, options)
        for attempt in range(options.retries + 1 if isinstance(text, str) else 1):
            seed = None if options.seed is None else options.seed + 1000 * attempt
            run = replace(options, seed=seed)
            audio = self._generate(self._request(run, text), self._feed(text, run.max_segment_tokens), run, on_chunk)
            if audio.finish_reason not in GUARD_REASONS or attempt == options.retries:
                return audio
            logger.warning("generation stopped by the %s guard; retrying with another seed", audio.finish_reason)

    def _generate(self, request: Request, feed: TextFeed, options: SpeechOptions, on_chunk) -> Audio:
        start = time.perf_counter()
        chunks = []
        for chunk in self._run(lambda: self._chunks(request, feed, options, start, trim=False), feed):
            if on_chunk is not None:
                on_chunk(chunk)
            chunks.append(chunk)
        codes = np.concatenate([c.codes for c in chunks]) if chunks else np.zeros((0, 16), np.int32)
        whole = cut_faults(iter(chunks))
        if options.trim_silence:
            whole = trim_quiet(whole, options.guards.silence_rms)
        return Audio.from_chunks(list(whole), codes, time.perf_counter() - start)

    def _generate_like_reference(self, text: Text, options: SpeechOptions) -> Audio:
        """The reference's path, audio differing from `stream()`'s past 300 frames. Frames a guard
        found faulty are dropped; the silence guard, which listens to the stream, does not run."""
        start, request = time.perf_counter(), self._request(options, text)
        feed = self._feed(text, options.max_segment_tokens)
        frames = list(self._run(lambda: iter(self._frames(request, feed, options.guards)), feed))
        rms = options.guards.silence_rms if options.trim_silence else None
        return offline_audio(self.decode, frames, request.ref_codes, rms, start)

    def stream(self, text: Text, options: SpeechOptions | None = None, /, **kw) -> Iterator[AudioChunk]:
        """Speaks `text` chunk by chunk while generating (options as in `generate_codes`).

        `text` is a str, a `TextFeed` written by another thread, or any iterable of text pieces
        (an LLM's deltas): generation starts as soon as the first words are known. The first
        chunk holds the first frame (80 ms); sizes then follow `chunk_frames` and stay at its
        last value. Long texts continue segment after segment through the same decoder.
        Leaving the loop early stops generation. The last chunk has `is_last`; chunks that end
        an utterance have `end_of_utterance` and `finish_reason`. `speed` (0.25 to 4) plays the
        speech that many times as fast, pitch kept, still chunk by chunk.
        """
        start = time.perf_counter()
        options = self.options(options, **kw)
        if options.decode != "stream":
            raise OptionError("decode", "stream() decodes as it goes: decode='reference' is for generate()")
        speed_stage(options.speed)  # off 1, the time-scale library must be there
        request = self._request(options, text)
        feed = self._feed(text, options.max_segment_tokens)
        return self._run(lambda: self._chunks(request, feed, options, start, options.trim_silence), feed)

    # -- cloning and audio ------------------------------------------------------------------

    def _encoder(self):
        if self._speech_encoder is None:
            self._speech_encoder = load_speech_encoder(self.path / "speech_tokenizer")
        return self._speech_encoder

    def clone_voice(self, ref_audio, ref_text: str | None = None, *, sample_rate: int | None = None,
                    x_vector_only: bool = False) -> Voice:
        """Clones the voice in `ref_audio` (a path, an `Audio`, or an array with `sample_rate`).

        With `ref_text` (its transcript) the voice clones in context from the reference codes;
        with `x_vector_only=True` only the speaker embedding is used.
        """
        if isinstance(ref_audio, tuple) and len(ref_audio) == 2:
            ref_audio, sample_rate = ref_audio
        encoder = getattr(self.model, "speaker_encoder", None)
        return self._worker.call(lambda: clone(self.config, self.tokenizer, encoder, self._encoder, ref_audio,
                                               ref_text, sample_rate=sample_rate, x_vector_only=x_vector_only))

    def _decoder(self):
        if self.speech_decoder is None:
            raise RuntimeError("this TTS was loaded without its speech tokenizer; it can only make codes")
        return self.speech_decoder

    def decode(self, codes, *, full_causal: bool = False) -> np.ndarray:
        """Codes (frames, 16) -> float32 waveform (frames * 1920,) at 24 kHz.

        By default this is the reference's offline decode (300-frame windows with 25 frames
        of context past 300 frames); `full_causal=True` decodes the whole clip at once, which
        is exactly what `stream()` produces.
        """
        codes = np.asarray(codes, dtype=np.int32)
        groups = self.config.talker.num_code_groups
        if codes.ndim != 2 or codes.shape[1] != groups:
            raise ValueError(f"codes must have shape (frames, {groups}), got {codes.shape}")
        decoder = self._decoder()
        return self._worker.call(lambda: decode_codes(decoder, codes, full_causal))
