"""`TTS`: the public API over a loaded checkpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, SAMPLES_PER_FRAME, Audio, AudioChunk
from .config import ModelConfig
from .sampling import SamplingConfig
from .generation import generate_frames
from .guards import Guards, guarded
from .models.qwen3_tts import Model
from .request import MAX_SEGMENT_TOKENS, Request, build_request, plan
from .streaming import DEFAULT_CHUNK_FRAMES
from .synthesis import GUARD_REASONS, Outcome, segment_frames, synthesize
from .tokenizer import TextTokenizer
from .voice import Voice, clone

logger = logging.getLogger(__name__)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Frame rows as one (frames, 16) int32 array, also when there are none."""
    return np.stack(rows).astype(np.int32) if rows else np.zeros((0, 16), np.int32)


def _guards(guards: Guards | bool | None) -> Guards:
    if isinstance(guards, Guards):
        return guards
    return Guards(enabled=guards is None or bool(guards))


class TTS:
    """A loaded Qwen3-TTS checkpoint: make codes (and, with the codec, audio) from text."""

    def __init__(self, model: Model, tokenizer: TextTokenizer, sampling: SamplingConfig,
                 path: Path | None = None, speech_decoder=None):
        self.model = model
        self.config: ModelConfig = model.config
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.path = path
        self.speech_decoder = speech_decoder
        self._speech_encoder = None
        self._lock = threading.Lock()
        self._owner: int | None = None

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

    # ------------------------------------------------------------------ requests

    def prepare(self, text: str, **kwargs) -> Request:
        """Validates one request and builds its prompt vectors (no generation, no segmenting)."""
        return build_request(self, text, **kwargs)

    @contextmanager
    def _exclusive(self):
        # One generation at a time per TTS: other threads wait their turn; the same thread
        # starting a second one while a stream is open would corrupt the decoder state.
        if self._owner == threading.get_ident():
            raise RuntimeError("this TTS is already generating in this thread: finish or close the open "
                               "stream first")
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None

    def _frames(self, request: Request) -> Iterator[tuple[mx.array, bool]]:
        return generate_frames(self.model.talker, request.prompt, request.sampling, request.seed)

    def iter_frames(self, text: str, **kwargs) -> Iterator[tuple[mx.array, bool]]:
        """The raw generation loop for one request: `(frame, is_last)` per frame ((16,) int32),
        with no guards and no segmenting."""
        return self._frames(self.prepare(text, **kwargs))

    # ------------------------------------------------------------------ cloning

    @property
    def speech_encoder(self):
        """The codec encoder (Base models), loaded on first use."""
        if self._speech_encoder is None:
            from .codec.encoder import load_speech_encoder

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
        return clone(self, ref_audio, ref_text, sample_rate=sample_rate, x_vector_only=x_vector_only)

    # ------------------------------------------------------------------ generation

    def generate_codes(self, text: str, *, speaker: str | None = None, language: str | None = "auto",
                       instruct: str | None = None, voice: Voice | str | Path | None = None,
                       non_streaming_mode: bool | None = None,
                       temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                       repetition_penalty: float | None = None, subtalker_temperature: float | None = None,
                       subtalker_top_k: int | None = None, subtalker_top_p: float | None = None,
                       max_new_tokens: int | None = None, seed: int | None = None,
                       guards: Guards | bool | None = None,
                       max_segment_tokens: int = MAX_SEGMENT_TOKENS) -> np.ndarray:
        """Generates the codec codes for `text`: int32 array (frames, 16).

        Sampling arguments default to the checkpoint's generation_config.json; `temperature=0`
        is greedy. `guards=False` turns the runaway guards off (the reference behaviour); texts
        over `max_segment_tokens` are generated sentence group by sentence group.
        """
        requests = plan(self, text, speaker=speaker, language=language, instruct=instruct, voice=voice,
                        non_streaming_mode=non_streaming_mode, temperature=temperature, top_k=top_k,
                        top_p=top_p, repetition_penalty=repetition_penalty,
                        subtalker_temperature=subtalker_temperature, subtalker_top_k=subtalker_top_k,
                        subtalker_top_p=subtalker_top_p, max_new_tokens=max_new_tokens, seed=seed,
                        max_segment_tokens=max_segment_tokens)
        watch: dict = {}
        with self._exclusive():
            for _ in segment_frames(self, requests, _guards(guards), Outcome(), watch):
                pass
        return _stack(watch["codes"])

    def generate(self, text: str, *, guards: Guards | bool | None = None, retries: int = 0,
                 trim_silence: bool = False, on_chunk: Callable[[AudioChunk], None] | None = None,
                 max_segment_tokens: int = MAX_SEGMENT_TOKENS, **kwargs) -> Audio:
        """Speaks `text` (arguments as in `generate_codes`) and returns the whole clip.

        `on_chunk(chunk)` is called with each piece as soon as it is decoded. A run stopped by
        a guard keeps the audio before the fault and says why in `finish_reason`; `retries`
        runs it again (with the next seed) that many times first.
        """
        guards = _guards(guards)
        seed = kwargs.pop("seed", None)
        for attempt in range(retries + 1):
            run_seed = None if seed is None else seed + 1000 * attempt
            requests = plan(self, text, seed=run_seed, max_segment_tokens=max_segment_tokens, **kwargs)
            audio = self._generate(requests, guards, trim_silence, on_chunk)
            if audio.finish_reason not in GUARD_REASONS or attempt == retries:
                return audio
            logger.warning("generation stopped by the %s guard; retrying with another seed", audio.finish_reason)

    def _generate(self, requests: list[Request], guards: Guards, trim_silence: bool, on_chunk) -> Audio:
        start = time.perf_counter()
        with self._exclusive():
            if not guards.enabled and len(requests) == 1 and not trim_silence and on_chunk is None:
                return self._generate_like_reference(requests[0], start)
            outcome, watch = Outcome(), {}
            chunks = list(synthesize(self, requests, guards=guards, chunk_frames=8, trim_silence=trim_silence,
                                     on_chunk=on_chunk, started=start, outcome=outcome, watch=watch))
        samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        codes = _stack(watch["codes"])
        state = watch.get("state")
        if state is not None and state.reason in ("repetition", "silence") and state.bad_frames:
            # Keep the audio before the fault, not the stuck sound or the silence itself.
            samples = samples[: max(0, len(samples) - state.bad_frames * SAMPLES_PER_FRAME)]
        return Audio(samples, SAMPLE_RATE, codes, time.perf_counter() - start, outcome.finish_reason)

    def _generate_like_reference(self, request: Request, start: float) -> Audio:
        """The reference's path: all frames, then the offline (windowed) decode."""
        rows, result = [], {"frame_limit": request.sampling.max_new_tokens - 1}
        for _ in guarded(self._frames(request), None, result, rows):
            pass
        codes = _stack(rows)
        if not len(codes):
            samples = np.zeros(0, np.float32)
        elif request.ref_codes is not None:
            # Decode after the reference codes, then cut their share off, as the reference does.
            both = self.decode(np.concatenate([request.ref_codes, codes]))
            samples = both[int(len(request.ref_codes) / (len(request.ref_codes) + len(codes)) * len(both)):]
        else:
            samples = self.decode(codes)
        return Audio(samples, SAMPLE_RATE, codes, time.perf_counter() - start, result["finish_reason"])

    def stream(self, text: str, *, chunk_frames: int | tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
               guards: Guards | bool | None = None, trim_silence: bool = False,
               max_segment_tokens: int = MAX_SEGMENT_TOKENS, **kwargs) -> Iterator[AudioChunk]:
        """Speaks `text` chunk by chunk while generating (arguments as in `generate_codes`).

        The first chunk holds the first frame (80 ms); sizes then follow `chunk_frames` and
        stay at its last value. Long texts continue segment after segment through the same
        decoder. Leaving the loop early stops generation. The last chunk has `is_last` and
        `finish_reason`.
        """
        start = time.perf_counter()
        requests = plan(self, text, max_segment_tokens=max_segment_tokens, **kwargs)  # validates now
        return self._locked_stream(requests, _guards(guards), chunk_frames, trim_silence, start)

    def _locked_stream(self, requests, guards, chunk_frames, trim_silence, start) -> Iterator[AudioChunk]:
        with self._exclusive():
            yield from synthesize(self, requests, guards=guards, chunk_frames=chunk_frames,
                                  trim_silence=trim_silence, started=start)

    # ------------------------------------------------------------------ audio

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
        from .codec import chunked_decode

        codes = mx.array(np.asarray(codes, dtype=np.int32))
        if codes.ndim != 2 or codes.shape[1] != self.config.talker.num_code_groups:
            raise ValueError(f"codes must have shape (frames, {self.config.talker.num_code_groups}), got {codes.shape}")
        decoder = self._decoder()
        wav = decoder(codes[None]) if full_causal else chunked_decode(decoder, codes[None])
        return np.asarray(wav[0], dtype=np.float32)
