"""Text hygiene and splitting: clean input, sentences, and segments that fit one generation."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# About two hours of speech; more in one request is almost surely a mistake.
MAX_CHARS = 100_000

# Words whose trailing period does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof sr jr st vs al e.g i.e cf approx dept gen col lt sgt capt rev hon mt ft "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# These only abbreviate before a number ("No. 5", "p. 12"); elsewhere they may end a sentence.
NUMBERED = frozenset("no nos vol p pp fig figs ch sec art".split())

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_CLOSERS = "\"'”’»)]}」』）】"
# Western end marks need whitespace after them, which keeps "3.14" and "example.com" whole.
_WESTERN_END = re.compile(rf"([.!?…]+)([{re.escape(_CLOSERS)}]*)(\s+)")
# CJK end marks end a sentence with or without a following space.
_CJK_END = re.compile(rf"[。！？]+[{re.escape(_CLOSERS)}]*|[!?]+(?=[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af])")
_CLAUSE = re.compile(r"[,;:，、；：—–]")

# Rough speaking rates: about 14 characters per second for alphabetic text, and a CJK character
# takes about three times as long to say as a Latin letter.
CHARS_PER_SECOND = 14.0
CJK_WEIGHT = 3


def weight(text: str) -> int:
    """Length in Latin-letter units: a CJK character counts as `CJK_WEIGHT`."""
    return len(text) + (CJK_WEIGHT - 1) * len(_CJK.findall(text))


def estimate_seconds(text: str) -> float:
    """A rough guess of how long `text` takes to say, for sizing the playback buffer."""
    return weight(text.strip()) / CHARS_PER_SECOND


def _ends_sentence(text: str, match: re.Match) -> bool:
    marks, after = match.group(1), text[match.end() :]
    if not after:
        return True
    if marks == "." and not match.group(2):
        word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
        word = word.lstrip("\"'(“‘[").lower()
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
        if word in NUMBERED and after[0].isdigit():
            return False
    # "e.g. this", "... and then": a lowercase word goes on the same sentence.
    return not after[0].islower()


def _split_paragraph(text: str) -> list[str]:
    cuts = {m.end() for m in _CJK_END.finditer(text)}
    cuts |= {m.end(2) for m in _WESTERN_END.finditer(text) if _ends_sentence(text, m)}
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _prefix_within(text: str, limit: int) -> int:
    """The longest prefix length of `text` whose weight is at most `limit`."""
    total = 0
    for i, ch in enumerate(text):
        total += CJK_WEIGHT if _CJK.match(ch) else 1
        if total > limit:
            return i
    return len(text)


def _wrap(sentence: str, max_chars: int) -> list[str]:
    """Cuts an over-long sentence at a clause mark, else a space, else anywhere."""
    out = []
    while weight(sentence) > max_chars:
        end = _prefix_within(sentence, max_chars)
        head, floor = sentence[:end], end // 3
        cut = max((m.end() for m in _CLAUSE.finditer(head)), default=0)
        if cut <= floor:
            cut = head.rfind(" ") + 1
        if cut <= floor:
            cut = end
        out.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        out.append(sentence)
    return out


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Splits text into sentences to speak one after another.

    Args:
        text: any amount of text; blank lines always separate sentences, single line breaks do not.
        max_chars: longest piece in Latin-letter units (see `weight`); longer sentences are cut
            at a clause mark or a space.

    Returns:
        The sentences, stripped, in order; empty for blank text.
    """
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = re.sub(r"\s+", " ", paragraph).strip()
        for sentence in _split_paragraph(paragraph):
            sentences.extend(_wrap(sentence, max_chars))
    return sentences


def clean_text(text: str) -> str:
    """NFC-normalizes, drops control and format characters, collapses whitespace (blank lines
    stay paragraph breaks), and refuses text with nothing to say."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is {len(text):,} characters long; at most {MAX_CHARS:,} fit one request "
                         "(about two hours of speech): split it")
    text = unicodedata.normalize("NFC", text)
    # Control characters (tabs, carriage returns...) separate words; format characters
    # (zero-width spaces, byte-order marks...) vanish.
    text = "".join(ch if ch == "\n" or not unicodedata.category(ch).startswith("C") else
                   " " if unicodedata.category(ch) == "Cc" else "" for ch in text)
    paragraphs = (re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text))
    text = "\n\n".join(p for p in paragraphs if p)
    if not any(ch.isalnum() for ch in text):
        raise ValueError("text is empty: it has no letters or digits to speak" if text else
                         "text is empty: give the words to speak")
    return text


def segment(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """One segment if `text` fits `max_tokens`; else whole sentences packed up to the limit
    (sentences too long on their own are cut at clauses, then spaces)."""
    if count_tokens(text) <= max_tokens:
        return [text]
    segments: list[str] = []
    current, used = "", 0
    for sentence in split_sentences(text, max_chars=max_tokens * 2):
        n = count_tokens(sentence)
        if current and used + n > max_tokens:
            segments.append(current)
            current, used = "", 0
        current, used = (f"{current} {sentence}" if current else sentence), used + n
    if current:
        segments.append(current)
    return segments
