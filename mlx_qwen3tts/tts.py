"""`TTS`: the public API over a loaded checkpoint; each method composes the pipeline's stages."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import mlx.core as mx
import numpy as np

from . import worker
from .audio import SAMPLE_RATE, Audio, AudioChunk
from .batch import BatchEngine
from .codec import chunked_decode
from .codec.encoder import load_speech_encoder
from .config import ModelConfig
from .decoders import DecoderPool
from .generation import generate_frames
from .guards import GUARD_REASONS, Guards
from .live import TextFeed, feed_from
from .models.qwen3_tts import Model
from .pipeline import (
    DEFAULT_CHUNK_FRAMES,
    Frames,
    chunk_schedule,
    cut_faults,
    decode_chunks,
    stop_on_silence,
)
from .pipeline import trim_silence as trim_quiet
from .prompt import PromptVectors, tokenize
from .request import FixedText, Request, build_request, segment_prompt
from .sampling import SamplingConfig
from .text import clean_text
from .text_stream import MAX_SEGMENT_TOKENS
from .tokenizer import TextTokenizer
from .voice import Voice, clone

logger = logging.getLogger(__name__)

Text = str | TextFeed | Iterable[str]
DEFAULT_SEGMENTS_AHEAD = 2


def _guards(guards: Guards | bool | None) -> Guards:
    if isinstance(guards, Guards):
        return guards
    return Guards(enabled=guards is None or bool(guards))


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


class Prepared:
    """One request's prompt, built on the calling thread (for inspection and the benchmark)."""

    def __init__(self, prompt: PromptVectors, sampling: SamplingConfig, seed: int | None):
        self.prompt, self.sampling, self.seed = prompt, sampling, seed


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
        self._worker = worker.shared()
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

    def _request(self, text: Text | None = None, **kwargs) -> Request:
        whole = isinstance(text, str) or (isinstance(text, TextFeed) and text.closed)
        if kwargs.get("non_streaming_mode") is None and text is not None and not whole:
            # Live text: read as it comes (the whole-text layout would wait for each segment).
            kwargs["non_streaming_mode"] = False
        return build_request(self.config, self.tokenizer, self.sampling, **kwargs)

    def _feed(self, text: Text, max_segment_tokens: int) -> TextFeed:
        """The stream's text as a feed: a str written whole (and checked now), a feed as it is,
        any other iterable of pieces pulled by a thread of its own."""
        if isinstance(text, str):
            clean_text(text)  # bad text fails here, before the first chunk
            feed = TextFeed(text)
        elif isinstance(text, TextFeed):
            feed = text
        elif isinstance(text, Iterable) and not isinstance(text, (bytes, bytearray)):
            feed = feed_from(text)
        else:
            raise TypeError(f"text must be a str, a TextFeed or an iterable of str, not {type(text).__name__}")
        feed.bind(self.tokenizer, max_segment_tokens)
        return feed

    def prepare(self, text: str, **kwargs) -> Prepared:
        """Validates one request and builds its prompt vectors (no generation, no segmenting)."""
        request = self._request(**kwargs)
        tokens = tokenize(self.tokenizer, clean_text(text)).text
        prompt = segment_prompt(self.model.talker, self.config, request, FixedText(tokens))
        return Prepared(prompt, request.sampling, request.seed)

    def iter_frames(self, text: str, **kwargs) -> Iterator[tuple[np.ndarray, bool]]:
        """The raw generation loop for one request: `(codes, is_last)` per frame ((16,) int32),
        with no guards and no segmenting."""
        request = self._request(**kwargs)
        tokens = tokenize(self.tokenizer, clean_text(text)).text

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
        return Frames(self.model.talker, self.config, request, feed, guards,
                      generate=lambda prompt, sampling, seed: engine.frames(prompt, sampling, seed),
                      generate_ahead=lambda prompt, sampling, seed: engine.frames(prompt, sampling, seed, ahead=None),
                      segments_ahead=self.segments_ahead)

    def _chunks(self, request: Request, feed: TextFeed, guards: Guards, chunk_frames,
                started: float) -> Iterator[AudioChunk]:
        frames = self._frames(request, feed, guards)
        self._decoder()  # fails now without a speech tokenizer
        decoder = self._decoders.take()  # a stream's decoder state is its own
        chunks = decode_chunks(decoder, frames, chunk_frames, started, request.ref_codes)
        chunks = stop_on_silence(chunks, guards, frames) if guards.enabled else chunks
        return _returning(chunks, lambda: self._decoders.give(decoder))

    # -- generation ------------------------------------------------------------------------

    def generate_codes(self, text: Text, *, guards: Guards | bool | None = None,
                       max_segment_tokens: int = MAX_SEGMENT_TOKENS, **kwargs) -> np.ndarray:
        """Generates the codec codes for `text`: int32 array (frames, 16).

        Keyword arguments: `speaker`, `language`, `instruct`, `voice`, `non_streaming_mode`,
        `seed` and the sampling knobs (`temperature`, `top_k`, `top_p`, `repetition_penalty`,
        `subtalker_temperature`, `subtalker_top_k`, `subtalker_top_p`, `max_new_tokens`), which
        default to the checkpoint's generation_config.json; `temperature=0` is greedy.
        `guards=False` turns the runaway guards off (the reference behaviour); texts over
        `max_segment_tokens` are generated sentence group by sentence group.
        """
        request, guards = self._request(text, max_segment_tokens=max_segment_tokens, **kwargs), _guards(guards)
        feed = self._feed(text, max_segment_tokens)
        return _stack(self._run(lambda: iter(self._frames(request, feed, guards)), feed))

    def generate(self, text: Text, *, guards: Guards | bool | None = None, retries: int = 0,
                 trim_silence: bool = False, on_chunk: Callable[[AudioChunk], None] | None = None,
                 max_segment_tokens: int = MAX_SEGMENT_TOKENS, **kwargs) -> Audio:
        """Speaks `text` (arguments as in `generate_codes`) and returns the whole clip.

        `on_chunk(chunk)` is called with each piece as soon as it is decoded. A segment stopped
        by a guard keeps its audio before the fault and says why in `finish_reason`; `retries`
        runs a text again (with the next seed) that many times first.
        """
        guards = _guards(guards)
        seed = kwargs.pop("seed", None)
        for attempt in range(retries + 1 if isinstance(text, str) else 1):
            run_seed = None if seed is None else seed + 1000 * attempt
            request = self._request(text, seed=run_seed, max_segment_tokens=max_segment_tokens, **kwargs)
            audio = self._generate(request, self._feed(text, max_segment_tokens), guards, trim_silence, on_chunk)
            if audio.finish_reason not in GUARD_REASONS or attempt == retries:
                return audio
            logger.warning("generation stopped by the %s guard; retrying with another seed", audio.finish_reason)

    def _generate(self, request: Request, feed: TextFeed, guards: Guards, trim_silence: bool, on_chunk) -> Audio:
        start = time.perf_counter()
        if not guards.enabled and feed.closed and feed.segments_made == 1 and not trim_silence and on_chunk is None:
            return self._generate_like_reference(request, feed, start)
        chunks = []
        for chunk in self._run(lambda: self._chunks(request, feed, guards, 8, start), feed):
            if on_chunk is not None:
                on_chunk(chunk)
            chunks.append(chunk)
        codes = np.concatenate([c.codes for c in chunks]) if chunks else np.zeros((0, 16), np.int32)
        whole = cut_faults(iter(chunks))
        if trim_silence:
            whole = trim_quiet(whole, guards.silence_rms)
        return Audio.from_chunks(list(whole), codes, time.perf_counter() - start)

    def _generate_like_reference(self, request: Request, feed: TextFeed, start: float) -> Audio:
        """The reference's path: all frames, then the offline (windowed) decode."""
        frames = list(self._run(lambda: iter(self._frames(request, feed, Guards(enabled=False))), feed))
        codes = _stack(frames)
        ref = request.ref_codes
        if not len(codes):
            samples = np.zeros(0, np.float32)
        elif ref is not None:
            # Decode after the reference codes, then cut their share off, as the reference does.
            both = self.decode(np.concatenate([ref, codes]))
            samples = both[int(len(ref) / (len(ref) + len(codes)) * len(both)):]
        else:
            samples = self.decode(codes)
        return Audio(samples, SAMPLE_RATE, codes, time.perf_counter() - start, frames[-1].finish_reason or "eos")

    def stream(self, text: Text, *, chunk_frames: int | tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
               guards: Guards | bool | None = None, trim_silence: bool = False,
               max_segment_tokens: int = MAX_SEGMENT_TOKENS, **kwargs) -> Iterator[AudioChunk]:
        """Speaks `text` chunk by chunk while generating (arguments as in `generate_codes`).

        `text` is a str, a `TextFeed` written by another thread, or any iterable of text pieces
        (an LLM's deltas): generation starts as soon as the first words are known. The first
        chunk holds the first frame (80 ms); sizes then follow `chunk_frames` and stay at its
        last value. Long texts continue segment after segment through the same decoder.
        Leaving the loop early stops generation. The last chunk has `is_last`; chunks that end
        an utterance have `end_of_utterance` and `finish_reason`.
        """
        start = time.perf_counter()
        request, guards = self._request(text, max_segment_tokens=max_segment_tokens, **kwargs), _guards(guards)
        next(chunk_schedule(chunk_frames))  # validates now
        feed = self._feed(text, max_segment_tokens)

        def chunks():
            out = self._chunks(request, feed, guards, chunk_frames, start)
            return trim_quiet(out, guards.silence_rms) if trim_silence else out

        return self._run(chunks, feed)

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

        def run() -> np.ndarray:
            x = mx.array(codes)[None]
            # A copy, so the MLX buffer goes now and the cache is cleared of it too.
            wav = np.array((decoder(x) if full_causal else chunked_decode(decoder, x))[0], dtype=np.float32)
            mx.clear_cache()  # a window's transients can be a GB
            return wav

        return self._worker.call(run)
