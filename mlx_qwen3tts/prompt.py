"""Prompt layouts: which text token and which codec row sit at each prefill position.

The layouts are pure functions over token ids, so every mode can be checked token by token
without weights. Each position's input vector is the sum of a text-side vector and a
codec-side vector; `embed_layout` and `TrailingText` turn a layout into the vectors the
generation loop consumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlx.core as mx

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
    # Where the trailing text starts in the segment's text (then tts_eos, then tts_pad), or None
    # when only tts_pad follows the prefill: what lets text arriving later be fed as it comes.
    trailing_from: int | None = None

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
    trailing_from = None

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
            trailing_from = len(codec_seq) - len(ids.ref_text)  # negative: the transcript's tail first
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
        trailing_from = 1
    return PromptLayout(tuple(text), tuple(codec), tuple(trailing), trailing_from)


def prefill_text_tokens(ids: TextIds, *, non_streaming_mode: bool, ref_frames: int = 0) -> int | None:
    """How many of the segment's text tokens the prefill needs before generation can start
    (`build_layout` on that many gives the same prefill as on the whole text), or None when
    it needs them all. `ids.text` is not read: it may still be arriving."""
    if non_streaming_mode:
        return None
    if ref_frames > 0:
        # In-context cloning: the text beside the reference frames, and one token more, which
        # decides that the text outlasts the frames (else the whole text sits in the prefill).
        return max(0, ref_frames + 1 - len(ids.ref_text or ()))
    return 1


# ---------------------------------------------------------------- vectors (on the model)


class TrailingText:
    """The text-side vector fed with each generated frame: the segment's text after the
    prefill, one token a frame, then tts_eos once, then tts_pad for good.

    `text` is the segment's token source (`get(i)` waits for token i, None past the end;
    `ready(i)` says whether it would answer at once). Each vector is embedded on its own, so a
    token gives the same vector whether its text arrived whole or piece by piece.
    """

    def __init__(self, talker, layout: PromptLayout, text, ref_text: tuple[int, ...], eos_id: int, pad_id: int):
        self._talker, self._text, self._ref = talker, text, ref_text
        self._start, self._eos_id, self._pad_id = layout.trailing_from, eos_id, pad_id
        self._pad = None

    def _id(self, step: int) -> int:
        if self._start is None:
            return self._pad_id
        j = self._start + step
        if j < 0:  # in-context cloning with a long transcript: its tail comes first
            return self._ref[len(self._ref) + j]
        token = self._text.get(j)
        if token is not None:
            return token
        return self._eos_id if j == 0 or self._text.get(j - 1) is not None else self._pad_id

    def ready(self, step: int) -> bool:
        return self._start is None or self._start + step < 0 or self._text.ready(self._start + step)

    def __call__(self, step: int) -> mx.array:
        token = self._id(step)
        if token == self._pad_id:
            if self._pad is None:
                self._pad = self._talker.embed_text(mx.array([token]))[0]
            return self._pad
        return self._talker.embed_text(mx.array([token]))[0]


@dataclass(frozen=True)
class PromptVectors:
    """What the loop consumes: the prefill vectors and the text fed with each frame."""

    prefill: mx.array  # (1, L, D)
    text: TrailingText
    layout: PromptLayout

    def text_at(self, step: int) -> mx.array:
        return self.text(step)

    def ready(self, step: int) -> bool:
        return self.text.ready(step)

    @property
    def trailing(self) -> mx.array:
        """The vectors of the layout's trailing ids, (T, D) (a complete text's)."""
        return mx.stack([self.text(k) for k in range(len(self.layout.trailing))])

    @property
    def tts_pad(self) -> mx.array:
        return self.text(len(self.layout.trailing))


def embed_layout(talker, layout: PromptLayout, speaker: mx.array | None = None,
                 ref_frames: mx.array | None = None) -> mx.array:
    """The prefill `(1, L, D)`: each position's text-side and codec-side vectors summed
    (either side may be absent).

    `speaker` fills the SPEAKER slot; `ref_frames` (M, D), the summed codebook embeddings of
    the reference frames (`talker.embed_frame`), fill the REF_FRAME slots.
    """
    text = mx.array(layout.text)
    codec = mx.array(layout.codec)
    tx = mx.where((text >= 0)[:, None], talker.embed_text(mx.maximum(text, 0)), 0.0)
    cx = mx.where((codec >= 0)[:, None], talker.embed_codec(mx.maximum(codec, 0)), 0.0)
    if SPEAKER in layout.codec:
        if speaker is None:
            raise ValueError("this prompt needs a speaker vector")
        cx = mx.where((codec == SPEAKER)[:, None], speaker.astype(cx.dtype)[None], cx)
    if REF_FRAME in layout.codec:
        start, count = layout.codec.index(REF_FRAME), layout.codec.count(REF_FRAME)
        if ref_frames is None or ref_frames.shape[0] != count:
            raise ValueError(f"this prompt needs {count} reference frames")
        cx = mx.concatenate([cx[:start], ref_frames.astype(cx.dtype), cx[start + count:]], axis=0)
    return (tx + cx)[None]
