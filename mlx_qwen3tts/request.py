"""Turning user arguments into validated requests: checks, prompt vectors, long-text segments."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from .config import ModelConfig
from .sampling import SamplingConfig
from .generation import PromptVectors, embed_layout
from .prompt import SPEAKER, build_layout, resolve_language, tokenize
from .text import clean_text, segment
from .voice import Voice

logger = logging.getLogger(__name__)

# Longer texts are spoken as several generations back to back (one decoder, no seam).
MAX_SEGMENT_TOKENS = 250


@dataclass
class Request:
    """One generation: its prompt vectors and the sampling settings to run them with."""

    prompt: PromptVectors
    sampling: SamplingConfig
    seed: int | None
    text_tokens: int = 0
    ref_codes: np.ndarray | None = None  # in-context cloning: the decoder's left context


def check_speaker(config: ModelConfig, speaker: str | None) -> int | None:
    kind = config.tts_model_type
    if kind == "custom_voice":
        if not speaker:
            raise ValueError(f"this CustomVoice model needs a speaker; choose one of: {', '.join(config.speakers)}")
        row = config.talker.spk_id.get(speaker.lower())
        if row is None:
            raise ValueError(f"unknown speaker {speaker!r}; choose one of: {', '.join(config.speakers)}")
        return row
    if speaker:
        what = "designs its voice from `instruct`" if kind == "voice_design" else "clones a voice (pass voice=)"
        raise ValueError(f"speaker={speaker!r} needs a CustomVoice model; this {kind} model {what}")
    return None


def check_instruct(config: ModelConfig, instruct: str | None) -> str | None:
    if not instruct:
        return None
    if config.tts_model_type == "base":
        raise ValueError("instruct is not supported by Base (voice clone) models; use a CustomVoice "
                         "1.7B or VoiceDesign model for instructions")
    if not config.supports_instruct:
        logger.warning("the 0.6B CustomVoice model has no instruction control; ignoring instruct=%r", instruct)
        return None
    return instruct


def check_voice(config: ModelConfig, voice: Voice | str | Path | None, speaker: str | None) -> Voice | None:
    kind = config.tts_model_type
    if kind != "base":
        if voice is not None:
            raise ValueError(f"voice= needs a Base model; this {kind} model uses "
                             f"{'speaker=' if kind == 'custom_voice' else 'instruct='}")
        return None
    if speaker and voice is not None:
        raise ValueError("pass either voice= or speaker=, not both: Base models speak in a cloned voice")
    if voice is None:
        preset = f"speaker={speaker!r} needs a CustomVoice model; " if speaker else ""
        raise ValueError(f"{preset}Base models speak in a cloned voice: pass voice=tts.clone_voice(reference_audio, ...)")
    voice = voice if isinstance(voice, Voice) else Voice.load(voice)
    voice.check_model(kind, config.tts_model_size, config.talker.hidden_size)
    return voice


def voice_frames(model, voice: Voice) -> mx.array:
    """The reference frames' summed embeddings, cached on the voice for this model."""
    key = ("ref_frames", id(model))
    if key not in voice._cache:
        voice._cache[key] = model.talker.embed_frame(mx.array(voice.ref_codes))
        mx.eval(voice._cache[key])
    return voice._cache[key]


def build_request(tts, text: str, *, speaker: str | None = None, language: str | None = "auto",
                  instruct: str | None = None, voice: Voice | str | Path | None = None,
                  non_streaming_mode: bool | None = None, seed: int | None = None, **sampling) -> Request:
    """Validates one request and builds its prompt vectors (no generation yet)."""
    config = tts.config
    text = clean_text(text)
    voice = check_voice(config, voice, speaker)
    row = check_speaker(config, speaker)
    instruct = check_instruct(config, instruct)
    language_row = resolve_language(config, language, speaker)
    if non_streaming_mode is None:
        non_streaming_mode = config.tts_model_type != "base"
    ids = tokenize(tts.tokenizer, text, instruct=instruct)
    speaker_vector, ref_frames, ref_count, ref_codes = None, None, 0, None
    if voice is not None:
        row, speaker_vector = SPEAKER, mx.array(voice.x_vector)
        if voice.in_context:
            ids = replace(ids, ref_text=voice.ref_text_ids)
            ref_frames, ref_count, ref_codes = voice_frames(tts.model, voice), len(voice.ref_codes), voice.ref_codes
    layout = build_layout(config, ids, language_row=language_row, speaker=row,
                          non_streaming_mode=non_streaming_mode, ref_frames=ref_count)
    vectors = embed_layout(tts.model.talker, layout, config.tts_pad_token_id, speaker_vector, ref_frames)
    return Request(vectors, tts.sampling.resolve(**sampling), seed, len(ids.text), ref_codes)


def plan(tts, text: str, *, max_segment_tokens: int = MAX_SEGMENT_TOKENS, voice=None,
         seed: int | None = None, **kwargs) -> list[Request]:
    """The requests for `text`: one, or one per segment of a long text (same voice, seeds
    counting up from `seed`). Every segment is validated before anything is generated."""
    text = clean_text(text)
    if voice is not None and not isinstance(voice, Voice):
        voice = Voice.load(voice)
    pieces = segment(text, lambda s: len(tts.tokenizer.encode(s)), max_segment_tokens)
    if len(pieces) > 1:
        logger.info("long text: %d segments of at most %d tokens", len(pieces), max_segment_tokens)
    return [build_request(tts, piece, voice=voice, seed=None if seed is None else seed + i, **kwargs)
            for i, piece in enumerate(pieces)]
