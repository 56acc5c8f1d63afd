"""User arguments -> a validated `Request`, and each segment's prompt vectors from it.

`build_request` runs on the caller's thread, before anything is generated, so bad input fails
at once; it reads no weights. `segment_prompt` runs on the generation thread, once a segment's
text is there in the amount its layout needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from .config import ModelConfig
from .models.talker import Talker
from .prompt import (
    SPEAKER,
    PromptVectors,
    TextIds,
    TrailingText,
    build_layout,
    embed_layout,
    prefill_text_tokens,
    resolve_language,
)
from .sampling import SamplingConfig
from .text import MAX_SEGMENT_TOKENS
from .tokenizer import TextTokenizer
from .voice import Voice

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One stream's settings: who speaks and how, the sampling and the seed. Its text comes
    apart, segment by segment (segment i draws with `seed + i`)."""

    role: tuple[int, ...]  # "<|im_start|>assistant\n"
    instruct: tuple[int, ...] | None  # the whole "<|im_start|>user\n...<|im_end|>\n" block
    language_row: int | None
    speaker: int | None  # a preset's codec row, SPEAKER (the voice's x-vector), or None
    voice: Voice | None
    non_streaming_mode: bool
    sampling: SamplingConfig
    seed: int | None = None
    max_segment_tokens: int = MAX_SEGMENT_TOKENS

    @property
    def ref_codes(self) -> np.ndarray | None:
        """In-context cloning: the reference codes, the decoder's left context."""
        return self.voice.ref_codes if self.voice is not None and self.voice.in_context else None

    def seed_of(self, segment: int) -> int | None:
        return None if self.seed is None else self.seed + segment


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
    voice.check_model(config.tts_model_size, config.talker.hidden_size)
    return voice


def build_request(config: ModelConfig, tokenizer: TextTokenizer, defaults: SamplingConfig, *,
                  speaker: str | None = None, language: str | None = "auto", instruct: str | None = None,
                  voice: Voice | str | Path | None = None, non_streaming_mode: bool | None = None,
                  seed: int | None = None, max_segment_tokens: int = MAX_SEGMENT_TOKENS,
                  **sampling) -> Request:
    """Validates the arguments of one stream (everything but its text)."""
    voice = check_voice(config, voice, speaker)
    row = check_speaker(config, speaker)
    instruct = check_instruct(config, instruct)
    language_row = resolve_language(config, language, speaker)
    if non_streaming_mode is None:
        non_streaming_mode = config.tts_model_type != "base"
    if not isinstance(max_segment_tokens, int) or max_segment_tokens < 2:
        raise ValueError(f"max_segment_tokens must be a positive number of tokens, got {max_segment_tokens!r}")
    role = tuple(tokenizer.encode("<|im_start|>assistant\n"))
    instruct_ids = tuple(tokenizer.encode(f"<|im_start|>user\n{instruct}<|im_end|>\n")) if instruct else None
    if voice is not None:
        row = SPEAKER
    return Request(role, instruct_ids, language_row, row, voice, non_streaming_mode,
                   defaults.resolve(**sampling), seed, max_segment_tokens)


def voice_frames(talker: Talker, voice: Voice) -> mx.array:
    """The reference frames' summed embeddings, computed once per voice and model.

    Kept on the voice under the talker's own token, which no other model ever gets: a voice
    kept across a model reload is embedded anew.
    """
    cache = voice.prompt_cache
    if talker.token not in cache:
        cache[talker.token] = talker.embed_frame(mx.array(voice.ref_codes))
        mx.eval(cache[talker.token])
    return cache[talker.token]


def segment_prompt(talker: Talker, config: ModelConfig, request: Request, text) -> PromptVectors:
    """The prompt of one segment whose token source is `text` (`get`, `ready`, `tokens`):
    waits for as much of its text as the layout puts in the prefill (all of it when the text
    sits in the prefill, the first token when it streams, more for in-context cloning)."""
    voice = request.voice
    ref_text = voice.ref_text_ids if voice is not None and voice.in_context else None
    ref_count = len(voice.ref_codes) if ref_text is not None else 0
    ids = TextIds(request.role, (), request.instruct, ref_text)
    need = prefill_text_tokens(ids, non_streaming_mode=request.non_streaming_mode, ref_frames=ref_count)
    if need is None or (need > 0 and text.get(need - 1) is None):
        known = text.tokens()  # the whole segment: it sits in the prefill, or is shorter than needed
    else:
        known = tuple(text.get(i) for i in range(need))
    layout = build_layout(config, TextIds(request.role, known, request.instruct, ref_text),
                          language_row=request.language_row, speaker=request.speaker,
                          non_streaming_mode=request.non_streaming_mode, ref_frames=ref_count)
    speaker = mx.array(voice.x_vector) if voice is not None else None
    frames = voice_frames(talker, voice) if ref_count else None
    prefill = embed_layout(talker, layout, speaker, frames)
    return PromptVectors(prefill, TrailingText(talker, layout, text, ref_text or (), config.tts_eos_token_id,
                                               config.tts_pad_token_id), layout)


class FixedText:
    """A complete segment's tokens, with the interface of a segment still arriving."""

    def __init__(self, tokens: tuple[int, ...]):
        self._ids = tuple(tokens)
        self.known = len(self._ids)

    def get(self, i: int) -> int | None:
        return self._ids[i] if i < len(self._ids) else None

    def ready(self, i: int) -> bool:
        return True

    def tokens(self) -> tuple[int, ...]:
        return self._ids
