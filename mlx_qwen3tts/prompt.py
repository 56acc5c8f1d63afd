"""Prompt layouts: which text token and which codec row sit at each prefill position.

Pure functions over token ids, so every mode can be checked token by token without weights.
Each position's input vector is the sum of a text-side vector and a codec-side vector; the
generation loop turns a `PromptLayout` into embeddings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .config import ModelConfig
from .tokenizer import TextTokenizer

logger = logging.getLogger(__name__)

NONE = -1  # no vector on this side of the track
SPEAKER = -2  # codec side: the speaker vector (preset row or cloned x-vector)
REF_FRAME = -3  # codec side: the next reference frame (sum of its 16 codebook embeddings)


@dataclass(frozen=True)
class PromptLayout:
    text: tuple[int, ...]  # text token id per position, or NONE
    codec: tuple[int, ...]  # codec row per position, or NONE / SPEAKER / REF_FRAME
    trailing: tuple[int, ...]  # text ids fed with generated frames 0, 1, ...; then tts_pad

    def __post_init__(self):
        if len(self.text) != len(self.codec):
            raise ValueError("text and codec tracks must have the same length")

    def __len__(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class TextIds:
    """The tokenized parts of a request."""

    role: tuple[int, ...]  # "<|im_start|>assistant\n"
    text: tuple[int, ...]  # the text to speak
    instruct: tuple[int, ...] | None = None  # the whole "<|im_start|>user\n...<|im_end|>\n" block
    ref_text: tuple[int, ...] | None = None  # the reference transcript (in-context cloning)


def tokenize(tokenizer: TextTokenizer, text: str, instruct: str | None = None,
             ref_text: str | None = None) -> TextIds:
    """Tokenizes exactly as the reference formats its chat strings, slicing included."""
    ids = tokenizer.encode(f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n")
    instruct_ids = tokenizer.encode(f"<|im_start|>user\n{instruct}<|im_end|>\n") if instruct else None
    ref_ids = tokenizer.encode(f"<|im_start|>assistant\n{ref_text}<|im_end|>\n")[3:-2] if ref_text else None
    return TextIds(tuple(ids[:3]), tuple(ids[3:-5]),
                   tuple(instruct_ids) if instruct_ids else None,
                   tuple(ref_ids) if ref_ids is not None else None)


def resolve_language(config: ModelConfig, language: str | None, speaker: str | None) -> int | None:
    """The codec language row (None for "auto"), applying the dialect-speaker rule."""
    lang = (language or "auto").lower()
    talker = config.talker
    if lang != "auto" and (lang not in talker.codec_language_id or "dialect" in lang):
        raise ValueError(f"unknown language {language!r}; choose one of: {', '.join(config.languages)}")
    row = None if lang == "auto" else talker.codec_language_id[lang]
    dialect = talker.spk_is_dialect.get(speaker.lower(), False) if speaker else False
    if lang in ("chinese", "auto") and isinstance(dialect, str) and dialect in talker.codec_language_id:
        row = talker.codec_language_id[dialect]
    return row


def codec_prefix(config: ModelConfig, language_row: int | None, speaker: int | None) -> list[int]:
    """The codec rows before the first generated frame: think/language tags, speaker, pad, bos.

    `speaker` is a codec row (preset speakers), SPEAKER (an external x-vector) or None.
    """
    t = config.talker
    if language_row is None:
        rows = [t.codec_nothink_id, t.codec_think_bos_id, t.codec_think_eos_id]
    else:
        rows = [t.codec_think_id, t.codec_think_bos_id, language_row, t.codec_think_eos_id]
    if speaker is not None:
        rows.append(speaker)
    return rows + [t.codec_pad_id, t.codec_bos_id]


def build_layout(config: ModelConfig, ids: TextIds, *, language_row: int | None, speaker: int | None,
                 non_streaming_mode: bool, ref_frames: int = 0) -> PromptLayout:
    """The prefill layout for one request; `ref_frames` > 0 selects in-context cloning."""
    pad, bos, eos = config.tts_pad_token_id, config.tts_bos_token_id, config.tts_eos_token_id
    codec_pad, codec_bos = config.talker.codec_pad_id, config.talker.codec_bos_id
    prefix = codec_prefix(config, language_row, speaker)

    text: list[int] = list(ids.instruct or ()) + list(ids.role)
    codec: list[int] = [NONE] * len(text)
    # Every prefix row but the final bos, paired with tts_pad ... tts_pad, tts_bos.
    text += [pad] * (len(prefix) - 2) + [bos]
    codec += prefix[:-1]

    if ref_frames > 0:
        if ids.ref_text is None:
            raise ValueError("in-context cloning needs the reference transcript")
        text_seq = list(ids.ref_text) + list(ids.text) + [eos]
        codec_seq = [codec_bos] + [REF_FRAME] * ref_frames
        if non_streaming_mode:
            text += text_seq + [pad] * len(codec_seq)
            codec += [codec_pad] * len(text_seq) + codec_seq
            trailing = [pad]
        elif len(text_seq) > len(codec_seq):
            text += text_seq[:len(codec_seq)]
            codec += codec_seq
            trailing = text_seq[len(codec_seq):]
        else:
            text += text_seq + [pad] * (len(codec_seq) - len(text_seq))
            codec += codec_seq
            trailing = [pad]
    elif non_streaming_mode:
        text += list(ids.text) + [eos, pad]
        codec += [codec_pad] * (len(ids.text) + 1) + [codec_bos]
        trailing = [pad]
    else:
        text += list(ids.text[:1])
        codec += [codec_bos]
        trailing = list(ids.text[1:]) + [eos]
    return PromptLayout(tuple(text), tuple(codec), tuple(trailing))
