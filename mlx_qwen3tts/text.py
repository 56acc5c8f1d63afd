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
# (A match only ever starts a run of marks: the look-behinds spare rescanning long runs.)
_WESTERN_END = re.compile(rf"(?<![.!?…])([.!?…]+)([{re.escape(_CLOSERS)}]*)(\s+)")
# CJK end marks end a sentence with or without a following space.
_CJK_END = re.compile(rf"(?<![。！？])[。！？]+[{re.escape(_CLOSERS)}]*"
                      rf"|(?<![!?])[!?]+(?=[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af])")
_CLAUSE = re.compile(r"[,;:，、；：—–]")
_RUNS = re.compile(r"\s+|\S+")

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


_QUOTES = "\"'(“‘["
# No rule reads more of the word before a period than its longest abbreviation.
_LONGEST = max(map(len, ABBREVIATIONS | NUMBERED))
# Characters an end-mark match may still be consuming at the end of text that is still arriving.
_WESTERN_TRAIL = ".!?…" + _CLOSERS
_CJK_TRAIL = "。！？!?" + _CLOSERS
_TRAIL = _WESTERN_TRAIL + "。！？"


def _word_span(text: str, i: int, lo: int) -> tuple[int, int]:
    """Bounds of the last word of `text[lo:i]` (as `rsplit(None, 1)[-1]` finds it), cut short on
    the left once its part after any leading quotes is longer than `_LONGEST`."""
    j = i
    while j > lo and text[j - 1].isspace():
        j -= 1
    k = j
    while k > lo and not text[k - 1].isspace():
        k -= 1
        if j - k > _LONGEST and text[k] not in _QUOTES:
            break
    return k, j


def _ends_sentence(text: str, match: re.Match, lo: int = 0) -> bool:
    """Whether a `_WESTERN_END` match in the paragraph `text[lo:match.endpos]` ends a sentence."""
    marks, end = match.group(1), match.end()
    if end >= match.endpos:
        return True
    after = text[end]
    if marks == "." and not match.group(2):
        k, j = _word_span(text, match.start(), lo)
        word = text[k:j].lstrip(_QUOTES).lower()
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
        if word in NUMBERED and after.isdigit():
            return False
    # "e.g. this", "... and then": a lowercase word goes on the same sentence.
    return not after.islower()


def _scan(pattern: re.Pattern, text: str, lo: int, hi: int, pos: int, complete: bool,
          trail: str) -> tuple[list[int], int]:
    """The sentence cuts `pattern` finds in `text[pos:hi]`, and where to scan on from. Unless
    the paragraph is `complete`, a match may still change only if it reaches `hi` or starts in
    the run of `trail` characters that ends the text."""
    cuts = []
    for m in pattern.finditer(text, pos, hi):
        if not complete and m.end() == hi:
            return cuts, m.start()
        if pattern is _CJK_END:
            cuts.append(m.end())
        elif _ends_sentence(text, m, lo):
            cuts.append(m.end(2))
        pos = m.end()
    if not complete:
        pos += len(text[pos:hi].rstrip(trail))
    return cuts, pos


def _sentence_cuts(text: str, lo: int, hi: int, western: int, cjk: int,
                   complete: bool) -> tuple[list[int], int, int]:
    """Sentence cuts in the paragraph `text[lo:hi]` past the scan positions `western` and `cjk`,
    with the positions to scan on from (see `_scan`)."""
    w_cuts, western = _scan(_WESTERN_END, text, lo, hi, western, complete, _WESTERN_TRAIL)
    c_cuts, cjk = _scan(_CJK_END, text, lo, hi, cjk, complete, _CJK_TRAIL)
    return sorted(set(w_cuts) | set(c_cuts)), western, cjk


def _split_paragraph(text: str) -> list[str]:
    cuts, _, _ = _sentence_cuts(text, 0, len(text), 0, 0, complete=True)
    pieces, start = [], 0
    for cut in cuts:
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


def _wrap_cut(head: str) -> int:
    """Where the first piece of an over-long sentence ends, `head` being as much of it as fits:
    after the last clause mark past the first third, else after the last space, else at the end."""
    end = len(head)
    floor = end // 3
    cut = max((m.end() for m in _CLAUSE.finditer(head)), default=0)
    if cut <= floor:
        cut = head.rfind(" ") + 1
    if cut <= floor:
        cut = end
    return cut


def _wrap(sentence: str, max_chars: int) -> list[str]:
    """Cuts an over-long sentence at a clause mark, else a space, else anywhere."""
    out = []
    while weight(sentence) > max_chars:
        cut = _wrap_cut(sentence[:_prefix_within(sentence, max_chars)])
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


def scrub(text: str) -> str:
    """Turns control characters but newlines (tabs, carriage returns...) into spaces, since they
    separate words, and drops the other C* characters (zero-width spaces, byte-order marks...)."""
    return "".join(ch if ch == "\n" or not unicodedata.category(ch).startswith("C") else
                   " " if unicodedata.category(ch) == "Cc" else "" for ch in text)


def _stable(ch: str) -> bool:
    """Whether NFC can never join `ch` to the text before it: it decomposes to a starter that is
    not the second half of any composition (combining marks and Hangul vowel/final jamo are)."""
    if ch < "\u0300":
        return True
    first = unicodedata.normalize("NFD", ch)[0]
    return (not unicodedata.combining(first) and unicodedata.category(first)[0] != "M"
            and not "\u1160" <= first <= "\u11ff" and not "\ud7b0" <= first <= "\ud7ff")


def _visible(ch: str) -> bool:
    """Whether cleaning keeps `ch` as a character that is not a space."""
    return not ch.isspace() and unicodedata.category(ch)[0] != "C"


class Cleaner:
    """`clean_text` a piece at a time, without its emptiness check: `feed` returns the
    cleaned text that later pieces can no longer change. It may end in a space or paragraph
    break, written as soon as a character that is not a space is known to follow."""

    def __init__(self):
        self._raw = ""  # raw text from the last place where NFC may cut on
        self._space = -1  # newlines in the whitespace run not yet written out; -1: no such run
        self._started = False
        self._alnum = False

    @property
    def speakable(self) -> bool:
        """Whether the text so far has a letter or digit."""
        # NFC neither makes nor removes letters and digits (the tests check every code point).
        return self._alnum or any(c.isalnum() for c in self._raw)

    def feed(self, piece: str, final: bool = False) -> str:
        """The cleaned text that `piece` settles (all the rest when `final`)."""
        raw, known = self._raw + piece, max(len(self._raw), 1)
        cut = len(raw) if final else next((i for i in range(len(raw) - 1, known - 1, -1) if _stable(raw[i])), 0)
        ready, self._raw = raw[:cut], raw[cut:]
        out = []
        for run in _RUNS.findall(scrub(unicodedata.normalize("NFC", ready))):
            if run[0].isspace():
                self._space = max(self._space, 0) + run.count("\n")
                continue
            # A run holding two newlines is a paragraph break; any other run is one space.
            if self._space >= 0 and self._started:
                out.append("\n\n" if self._space >= 2 else " ")
            self._space, self._started = -1, True
            self._alnum = self._alnum or any(c.isalnum() for c in run)
            out.append(run)
        if self._space >= 0 and self._started and self._raw and _visible(self._raw[0]):
            # The run is over: a character that NFC may still change, but not into a space, follows.
            out.append("\n\n" if self._space >= 2 else " ")
            self._space = -1
        return "".join(out)


def clean_text(text: str) -> str:
    """NFC-normalizes, drops control and format characters, collapses whitespace (blank lines
    stay paragraph breaks), and refuses text with nothing to say."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is {len(text):,} characters long; at most {MAX_CHARS:,} fit one request "
                         "(about two hours of speech): split it")
    text = unicodedata.normalize("NFC", text)
    text = scrub(text)
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
