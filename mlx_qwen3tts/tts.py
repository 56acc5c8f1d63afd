"""`TTS`: the public API over a loaded checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, Audio, AudioChunk
from .config import ModelConfig, SamplingConfig
from .generation import PromptVectors, embed_layout, generate_frames
from .models.qwen3_tts import Model
from .prompt import SPEAKER, build_layout, resolve_language, tokenize
from .streaming import DEFAULT_CHUNK_FRAMES, stream_audio
from .tokenizer import TextTokenizer
from .voice import Voice, clone

logger = logging.getLogger(__name__)


@dataclass
class Request:
    """A validated request: the prompt vectors and the sampling settings to run them with."""

    prompt: PromptVectors
    sampling: SamplingConfig
    seed: int | None
    ref_codes: np.ndarray | None = None  # in-context cloning: the decoder's left context


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

    def _check_speaker(self, speaker: str | None) -> int | None:
        if self.kind == "custom_voice":
            if not speaker:
                raise ValueError(f"this CustomVoice model needs a speaker; choose one of: {', '.join(self.speakers)}")
            row = self.config.talker.spk_id.get(speaker.lower())
            if row is None:
                raise ValueError(f"unknown speaker {speaker!r}; choose one of: {', '.join(self.speakers)}")
            return row
        if speaker:
            what = "designs its voice from `instruct`" if self.kind == "voice_design" else "clones a voice (pass voice=)"
            raise ValueError(f"speaker={speaker!r} needs a CustomVoice model; this {self.kind} model {what}")
        return None

    def _check_instruct(self, instruct: str | None) -> str | None:
        if not instruct:
            return None
        if self.kind == "base":
            raise ValueError("instruct is not supported by Base (voice clone) models; use a CustomVoice "
                             "1.7B or VoiceDesign model for instructions")
        if not self.config.supports_instruct:
            logger.warning("the 0.6B CustomVoice model has no instruction control; ignoring instruct=%r", instruct)
            return None
        return instruct

    def _check_voice(self, voice: Voice | str | Path | None, speaker: str | None) -> Voice | None:
        if self.kind != "base":
            if voice is not None:
                raise ValueError(f"voice= needs a Base model; this {self.kind} model uses "
                                 f"{'speaker=' if self.kind == 'custom_voice' else 'instruct='}")
            return None
        if speaker:
            raise ValueError("pass either voice= or speaker=, not both: Base models speak in a cloned voice")
        if voice is None:
            raise ValueError("Base models speak in a cloned voice: pass voice=tts.clone_voice(reference_audio, ...)")
        if not isinstance(voice, Voice):
            voice = Voice.load(voice)
        voice.check_model(self.kind, self.config.tts_model_size, self.config.talker.hidden_size)
        return voice

    def _voice_frames(self, voice: Voice) -> mx.array:
        """The reference frames' summed embeddings, cached on the voice for this model."""
        key = ("ref_frames", id(self.model))
        if key not in voice._cache:
            voice._cache[key] = self.model.talker.embed_frame(mx.array(voice.ref_codes))
            mx.eval(voice._cache[key])
        return voice._cache[key]

    def prepare(self, text: str, *, speaker: str | None = None, language: str | None = "auto",
                instruct: str | None = None, voice: Voice | str | Path | None = None,
                non_streaming_mode: bool | None = None, seed: int | None = None, **sampling) -> Request:
        """Validates a request and builds its prompt vectors (no generation yet)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text is empty: give the words to speak")
        voice = self._check_voice(voice, speaker)
        row = self._check_speaker(speaker)
        instruct = self._check_instruct(instruct)
        language_row = resolve_language(self.config, language, speaker)
        if non_streaming_mode is None:
            non_streaming_mode = self.kind != "base"
        ids = tokenize(self.tokenizer, text, instruct=instruct)
        speaker_vector, ref_frames, ref_count = None, None, 0
        if voice is not None:
            row, speaker_vector = SPEAKER, mx.array(voice.x_vector)
            if voice.in_context:
                ids = replace(ids, ref_text=voice.ref_text_ids)
                ref_frames, ref_count = self._voice_frames(voice), len(voice.ref_codes)
        layout = build_layout(self.config, ids, language_row=language_row, speaker=row,
                              non_streaming_mode=non_streaming_mode, ref_frames=ref_count)
        vectors = embed_layout(self.model.talker, layout, self.config.tts_pad_token_id, speaker_vector, ref_frames)
        return Request(vectors, self.sampling.resolve(**sampling), seed,
                       voice.ref_codes if voice is not None and voice.in_context else None)

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

    def iter_frames(self, text: str, **kwargs) -> Iterator[tuple[mx.array, bool]]:
        """Yields `(frame, is_last)` for each generated frame ((16,) int32) as soon as it exists."""
        return self._frames(self.prepare(text, **kwargs))

    def _frames(self, request: Request) -> Iterator[tuple[mx.array, bool]]:
        return generate_frames(self.model.talker, request.prompt, request.sampling, request.seed)

    def generate_codes(self, text: str, *, speaker: str | None = None, language: str | None = "auto",
                       instruct: str | None = None, voice: Voice | str | Path | None = None,
                       non_streaming_mode: bool | None = None,
                       temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                       repetition_penalty: float | None = None, subtalker_temperature: float | None = None,
                       subtalker_top_k: int | None = None, subtalker_top_p: float | None = None,
                       max_new_tokens: int | None = None, seed: int | None = None) -> np.ndarray:
        """Generates the codec codes for `text`: int32 array (frames, 16)."""
        frames = self.iter_frames(
            text, speaker=speaker, language=language, instruct=instruct, voice=voice,
            non_streaming_mode=non_streaming_mode,
            temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty,
            subtalker_temperature=subtalker_temperature, subtalker_top_k=subtalker_top_k,
            subtalker_top_p=subtalker_top_p, max_new_tokens=max_new_tokens, seed=seed)
        codes = [np.asarray(f) for f, _ in frames]
        n = self.config.talker.code_predictor.num_code_groups
        return np.stack(codes).astype(np.int32) if codes else np.zeros((0, n), np.int32)

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

    def generate(self, text: str, **kwargs) -> Audio:
        """Speaks `text` (arguments as in `generate_codes`) and returns the whole clip."""
        start = time.perf_counter()
        request = self.prepare(text, **kwargs)
        frames = [np.asarray(f) for f, _ in self._frames(request)]
        codes = np.stack(frames).astype(np.int32) if frames else np.zeros((0, 16), np.int32)
        if not len(codes):
            samples = np.zeros(0, np.float32)
        elif request.ref_codes is not None:
            # As the reference: decode after the reference codes, then cut their share off.
            both = self.decode(np.concatenate([request.ref_codes, codes]))
            samples = both[int(len(request.ref_codes) / (len(request.ref_codes) + len(codes)) * len(both)):]
        else:
            samples = self.decode(codes)
        return Audio(samples, SAMPLE_RATE, codes, time.perf_counter() - start)

    def stream(self, text: str, *, chunk_frames: int | tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
               **kwargs) -> Iterator[AudioChunk]:
        """Speaks `text` chunk by chunk while generating (arguments as in `generate_codes`).

        The first chunk holds the first frame (80 ms); sizes then follow `chunk_frames`
        and stay at its last value. Leaving the loop early stops generation. With an
        in-context voice the decoder first runs over the reference codes (audio dropped),
        so the first chunk already has its left context.
        """
        start = time.perf_counter()
        request = self.prepare(text, **kwargs)  # validates now, before the first chunk
        return stream_audio(self._decoder(), self._frames(request), chunk_frames, start,
                            prime=request.ref_codes)
