"""Sentences: where a text's sentences end, for a whole text (`split_sentences`) and for text
that arrives in pieces (`SentenceScanner`), by the same rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .length import prefix_within, weight

# Words whose trailing period does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof sr jr st vs al e.g i.e cf approx dept gen col lt sgt capt rev hon mt ft "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# These only abbreviate before a number ("No. 5", "p. 12"); elsewhere they may end a sentence.
NUMBERED = frozenset("no nos vol p pp fig figs ch sec art".split())

_CLOSERS = "\"'”’»)]}」』）】"
# Western end marks need whitespace after them, which keeps "3.14" and "example.com" whole.
# (A match only ever starts a run of marks: the look-behinds spare rescanning long runs.)
_WESTERN_END = re.compile(rf"(?<![.!?…])([.!?…]+)([{re.escape(_CLOSERS)}]*)(\s+)")
# CJK end marks end a sentence with or without a following space.
_CJK_END = re.compile(rf"(?<![。！？])[。！？]+[{re.escape(_CLOSERS)}]*"
                      rf"|(?<![!?])[!?]+(?=[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af])")
_CLAUSE = re.compile(r"[,;:，、；：—–]")

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
        cut = _wrap_cut(sentence[:prefix_within(sentence, max_chars)])
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



@dataclass(frozen=True)
class SentenceEnd:
    """A sentence end that no later text can move."""

    end: int  # where the sentence ends, in the cleaned text
    next: int | None  # where the next sentence starts; None at the end of the text


class SentenceScanner:
    """`split_sentences` on cleaned text that arrives in pieces (as `Cleaner.feed` writes it):
    each sentence end is reported once no later text can move it.

    Positions are offsets in the whole cleaned text. The scanner holds the text that its rules,
    or its reader (see `trim`), may still read.
    """

    _TRIM = 4096  # characters of text no longer needed before the buffer is cut

    def __init__(self, max_chars: int):
        self._max_chars = max_chars
        self._buf = ""  # the cleaned text from position _off on
        self._off = 0
        # The paragraph's start, its two end-mark scan positions and how far the text was
        # scanned; cuts found but not yet passed; the open sentence piece's start.
        self._para = self._west = self._cjk = self._scanned = 0
        self._cuts: list[int] = []
        self._piece = 0
        # How much of the open piece was weighed, its weight, and where it stops fitting.
        self._weigh_from = self._weight = self._weighed = 0
        self._over: int | None = None
        self._spans: list[tuple[int, int]] = []  # the sentences decided so far

    @property
    def end(self) -> int:
        """Where the text so far ends."""
        return self._off + len(self._buf)

    @property
    def open_start(self) -> int:
        """Where the open sentence starts: every sentence end before it is decided."""
        return self._piece

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of every sentence decided so far."""
        return list(self._spans)

    def text(self, a: int, b: int) -> str:
        """The text from `a` to `b` (not before what `trim` dropped)."""
        return self._buf[a - self._off:b - self._off]

    def add(self, cleaned: str) -> list[SentenceEnd]:
        """Adds cleaned text (where "\\n\\n" is a paragraph break); returns the sentence ends it settles."""
        ends: list[SentenceEnd] = []
        for i, part in enumerate(cleaned.split("\n\n")):
            if i:  # the cleaner writes "\n\n" only for a paragraph break
                self._split(complete=True, after=self.end + 2, ends=ends)
                self._buf += "\n\n"
                self._para = self._west = self._cjk = self.end
            self._buf += part
        if cleaned:
            self._split(complete=False, after=None, ends=ends)
        return ends

    def finish(self) -> list[SentenceEnd]:
        """The end of the text: the sentence ends still open, the last at the end of the text."""
        ends: list[SentenceEnd] = []
        if self.end > self._para:
            self._split(complete=True, after=None, ends=ends)
        return ends

    def trim(self, keep: int) -> None:
        """Drops the text before `keep` that no rule reads again, once that is most of the text held."""
        word, _ = _word_span(self._buf, self._west - self._off, max(self._para - self._off, 0))
        keep = min(keep, self._piece, self._cjk, word + self._off, self.end)
        if keep - self._off > max(self._TRIM, len(self._buf) // 2):
            self._buf, self._off = self._buf[keep - self._off:], keep

    def _split(self, complete: bool, after: int | None, ends: list[SentenceEnd]) -> None:
        """Decides the sentence ends that the text so far settles (all of them when the
        paragraph is `complete`; `after` is where the text goes on after it, None at the end)."""
        off, hi = self._off, self.end
        # New end marks and closers alone only extend a run that a later character settles.
        if complete or self.text(max(self._scanned, self._para), hi).lstrip(_TRAIL):
            cuts, west, cjk = _sentence_cuts(self._buf, max(self._para - off, 0), hi - off,
                                             self._west - off, self._cjk - off, complete)
            self._west, self._cjk = west + off, cjk + off
            self._cuts = sorted(set(self._cuts).union(c + off for c in cuts))
        self._scanned = hi
        settled = hi if complete else min(self._west, self._cjk)  # no cut will appear before this
        while self._piece < hi:
            p = self._piece
            while self._cuts and self._cuts[0] <= p:
                self._cuts.pop(0)
            cut = self._cuts[0] if self._cuts else None
            if cut is not None and cut <= settled and weight(self.text(p, cut)) <= self._max_chars:
                self._cuts.pop(0)
                self._sentence_end(cut, self._skip_space(cut, hi, after, complete), ends)
                continue
            limit = self._wrap_limit(hi)
            if limit is None or settled < limit or (cut is not None and cut <= limit):
                break
            # The sentence goes past what fits: `_wrap` cuts it at a clause mark or space.
            head = self.text(p, limit)
            k = _wrap_cut(head)
            self._sentence_end(p + len(head[:k].rstrip()), self._skip_space(p + k, hi, after, complete), ends)
        if complete and self._piece < hi:
            self._sentence_end(hi, after, ends)

    def _wrap_limit(self, hi: int) -> int | None:
        """Where the open piece stops fitting `max_chars`, or None while all of it fits."""
        p = self._piece
        if self._weigh_from != p:
            self._weigh_from, self._weight, self._weighed, self._over = p, 0, p, None
        # Every character weighs at least one, so max_chars + 1 of them settle the question.
        upto = min(hi, p + self._max_chars + 1)
        if self._over is None and upto > self._weighed:
            self._weight += weight(self.text(self._weighed, upto))
            self._weighed = upto
            if self._weight > self._max_chars:
                self._over = p + prefix_within(self.text(p, upto), self._max_chars)
        return self._over

    def _skip_space(self, pos: int, hi: int, after: int | None, complete: bool) -> int | None:
        """The next sentence's start: the first non-space from `pos`, or `after` past a
        complete paragraph (an open one only ends in a space that a non-space follows)."""
        while pos < hi and self._buf[pos - self._off].isspace():
            pos += 1
        return after if complete and pos == hi else pos

    def _sentence_end(self, end: int, after: int | None, ends: list[SentenceEnd]) -> None:
        self._spans.append((self._piece, end))
        self._piece = end if after is None else after
        ends.append(SentenceEnd(end, after))
