"""Text that arrives in pieces (LLM deltas), turned into each segment's token ids as they become final.

The rules are the whole text's: `text.clean_text`, sentences as `text.split_sentences` finds
them, and segments of whole sentences that end at the first sentence end where they hold at
least `max_segment_tokens` tokens (or at the end of the text). A token is released once no
later text can change it, so every split of a text releases the same tokens, and
`segment_tokens` runs the same machinery on a whole text.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass

from . import text as T
from .tokenizer import TextTokenizer

MAX_SEGMENT_TOKENS = 250


@dataclass(frozen=True)
class Release:
    """Tokens that later text can no longer change, in order."""

    tokens: tuple[int, ...]  # token ids of the current segment that can no longer change (may be empty)
    segment_end: bool = False  # the current segment ends right after these tokens


def _max_tokens(text: str) -> int:
    """At most how many tokens any prefix of `text` encodes to: a BPE token has a byte or more,
    and NFC, which the tokenizer applies, at most triples the bytes (and keeps NFC text as is)."""
    return len(text.encode()) * (1 if unicodedata.is_normalized("NFC", text) else 3)


def _kind(ch: str) -> str | None:
    """Letter or symbol, the two character kinds whose runs make long pre-tokens."""
    return "L" if ch.isalpha() else None if ch.isspace() or unicodedata.category(ch)[0] == "N" else "P"


class TextStream:
    """One utterance's text, pushed piece by piece.

    Positions are offsets in the cleaned text. A *unit* is a pre-token or an added token: BPE
    never merges across units, so a unit followed by another is final.
    """

    _TRIM = 4096  # characters of text no longer needed before the buffer is cut

    def __init__(self, tokenizer: TextTokenizer, max_segment_tokens: int = MAX_SEGMENT_TOKENS):
        if not isinstance(max_segment_tokens, int) or max_segment_tokens < 2:
            raise ValueError(f"max_segment_tokens must be an int of at least 2, not {max_segment_tokens!r}")
        self._tok, self._limit, self._max_chars = tokenizer, max_segment_tokens, 2 * max_segment_tokens
        added = tokenizer.added_tokens()
        # Text ending in one of these may still become an added token (a whole one may grow longer).
        self._prefixes = {t[:i] for t in added for i in range(1, len(t))}
        self._longest = max(map(len, added), default=1)
        self._clean, self._raw_chars, self._ended = T.Cleaner(), 0, False
        self._buf, self._off = "", 0  # the cleaned text from position _off on
        # Sentences: the paragraph's start, its two end-mark scan positions and how far the text
        # was scanned, cuts found but not yet passed, the open sentence piece's start and weight.
        self._para = self._west = self._cjk = self._piece = self._scanned = 0
        self._cuts: list[int] = []
        self._weigh_from = self._weight = self._weighed = 0
        self._over: int | None = None
        self._sentences: list[tuple[int, int]] = []  # spans decided so far, as are _segments
        self._segments: list[tuple[int, int]] = []
        # Tokens: the segment's start; the released frontier and token count; final units past
        # it; the open region that is re-encoded, how far it was looked at, and how far it is
        # known to be one kind of character.
        self._seg = self._front = self._count = self._open = self._seen = self._same = 0
        self._fin: deque[tuple[int, int, list[int]]] = deque()
        self._done: list[Release] = []  # segments ended but not handed out, then the open one's ids
        self._ids: list[int] = []
        self.encoded_chars = 0  # characters given to the tokenizer so far (the work done)

    @property
    def speakable(self) -> bool:
        """Whether the cleaned text so far has a letter or digit."""
        return self._clean.speakable

    @property
    def sentence_spans(self) -> list[tuple[int, int]]:
        """(start, end) in the cleaned text of every sentence decided so far."""
        return list(self._sentences)

    @property
    def segment_spans(self) -> list[tuple[int, int]]:
        """(start, end) in the cleaned text of every segment ended so far."""
        return list(self._segments)

    def push(self, piece: str) -> list[Release]:
        """Adds a piece of the text; returns the tokens that became final."""
        if not isinstance(piece, str):
            raise TypeError(f"text pieces must be str, not {type(piece).__name__}")
        if self._ended:
            raise RuntimeError("this text stream has ended")
        if self._raw_chars + len(piece) > T.MAX_CHARS:
            raise ValueError(f"the text passes {T.MAX_CHARS:,} characters, the most one request takes "
                             "(about two hours of speech): split it")
        self._raw_chars += len(piece)
        self._add(self._clean.feed(piece))
        self._examine(self._end, skip=True)
        self._release()
        return self._take()

    def end(self) -> list[Release]:
        """The end of the text: releases the rest, the last Release ending the last segment;
        nothing if the text has nothing to speak."""
        if self._ended:
            return []
        self._ended = True
        self._add(self._clean.feed("", final=True))
        if self._end > self._para:
            self._split(complete=True, after=None)
        return self._take()

    # ------------------------------------------------------------------ text and sentences

    @property
    def _end(self) -> int:
        return self._off + len(self._buf)

    def _text(self, a: int, b: int) -> str:
        return self._buf[a - self._off:b - self._off]

    def _add(self, cleaned: str) -> None:
        for i, part in enumerate(cleaned.split("\n\n")):
            if i:  # the cleaner writes "\n\n" only for a paragraph break
                self._split(complete=True, after=self._end + 2)
                self._buf += "\n\n"
                self._para = self._west = self._cjk = self._end
            self._buf += part
        if cleaned:
            self._split(complete=False, after=None)
            self._trim()

    def _split(self, complete: bool, after: int | None) -> None:
        """Decides the sentence ends that the text so far settles (all of them when the
        paragraph is `complete`; `after` is where the text goes on after it, None at the end)."""
        off, hi = self._off, self._end
        # New end marks and closers alone only extend a run that a later character settles.
        if complete or self._text(max(self._scanned, self._para), hi).lstrip(T._TRAIL):
            cuts, west, cjk = T._sentence_cuts(self._buf, max(self._para - off, 0), hi - off,
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
            if cut is not None and cut <= settled and T.weight(self._text(p, cut)) <= self._max_chars:
                self._cuts.pop(0)
                self._sentence_end(cut, self._skip_space(cut, hi, after, complete))
                continue
            limit = self._wrap_limit(hi)
            if limit is None or settled < limit or (cut is not None and cut <= limit):
                break
            # The sentence goes past what fits: `_wrap` cuts it at a clause mark or space.
            head = self._text(p, limit)
            k = T._wrap_cut(head)
            self._sentence_end(p + len(head[:k].rstrip()), self._skip_space(p + k, hi, after, complete))
        if complete and self._piece < hi:
            self._sentence_end(hi, after)

    def _wrap_limit(self, hi: int) -> int | None:
        """Where the open piece stops fitting `max_chars`, or None while all of it fits."""
        p = self._piece
        if self._weigh_from != p:
            self._weigh_from, self._weight, self._weighed, self._over = p, 0, p, None
        # Every character weighs at least one, so max_chars + 1 of them settle the question.
        upto = min(hi, p + self._max_chars + 1)
        if self._over is None and upto > self._weighed:
            self._weight += T.weight(self._text(self._weighed, upto))
            self._weighed = upto
            if self._weight > self._max_chars:
                self._over = p + T._prefix_within(self._text(p, upto), self._max_chars)
        return self._over

    def _skip_space(self, pos: int, hi: int, after: int | None, complete: bool) -> int | None:
        """The next sentence's start: the first non-space from `pos`, or `after` past a
        complete paragraph (an open one only ends in a space that a non-space follows)."""
        while pos < hi and self._buf[pos - self._off].isspace():
            pos += 1
        return after if complete and pos == hi else pos

    def _sentence_end(self, end: int, after: int | None) -> None:
        """A sentence ends at `end` (the next starts at `after`): the segment ends here if it
        now holds enough tokens, or if the text ends."""
        self._sentences.append((self._piece, end))
        self._piece = end if after is None else after
        if end < self._front:
            return  # inside a unit released because no sentence end before it could reach the limit
        rest = self._rest(end)
        if after is not None and self._count + len(rest) < self._limit:
            return
        self._ids += rest
        self._done.append(Release(tuple(self._ids), True))
        self._segments.append((self._seg, end))
        self._ids, self._count, self._fin = [], 0, deque()
        if after is not None:
            self._seg = self._front = self._open = self._seen = self._same = after

    def _trim(self) -> None:
        """Drops text that no rule will read again, once that is most of the buffer."""
        word, _ = T._word_span(self._buf, self._west - self._off, max(self._para - self._off, 0))
        keep = min(self._front, self._open, self._piece, self._cjk, word + self._off, self._end)
        if keep - self._off > max(self._TRIM, len(self._buf) // 2):
            self._buf, self._off = self._buf[keep - self._off:], keep

    # ------------------------------------------------------------------ tokens

    def _encode(self, a: int, b: int) -> list[int]:
        self.encoded_chars += b - a
        return self._tok.encode(self._text(a, b))

    def _examine(self, upto: int, skip: bool = False) -> None:
        """Encodes the open region up to `upto`: its units before the last one, and before any
        tail that may yet become an added token, are final. The region is only cut where NFC
        cannot join the text across (`_stable`), since the tokenizer normalizes it again:
        dropping format characters after NFC can leave "a\u0327\u0301" to compose later."""
        if upto <= max(self._seen, self._open):
            return
        if skip and upto - self._open > 8 and self._seen > self._open:
            # Letters after letters (or symbols after symbols) only lengthen the last unit;
            # each push checks only its own characters against the last one seen.
            kinds = {_kind(c) for c in self._text(max(self._seen, self._same) - 1, upto)}
            if len(kinds) == 1 and None not in kinds:
                self._same = upto
                return
        tail = self._text(self._open, upto)
        self.encoded_chars += len(tail)
        units, n = self._tok.units(tail), len(tail)
        hold = n - next((k for k in range(min(self._longest - 1, n), 0, -1) if tail[n - k:] in self._prefixes), 0)
        # Offsets are exact when normalizing changes nothing; else a cut is checked by decoding.
        exact = unicodedata.is_normalized("NFC", tail)
        cut, ids = 0, []
        for start, unit in units:
            if start >= hold:
                break
            if (start > cut and T._stable(tail[start]) and
                    (exact or self._tok.decode(ids) == unicodedata.normalize("NFC", tail[cut:start]))):
                self._fin.append((self._open + cut, self._open + start, ids))
                cut, ids = start, []
            ids += unit
        self._open += cut
        self._seen = max(self._seen, upto)

    def _rest(self, end: int) -> list[int]:
        """The segment's ids from the released frontier to a sentence end at `end`: the final
        units before the one holding `end - 1`, then that unit's text up to `end` encoded."""
        self._examine(end)
        ids: list[int] = []
        for a, b, unit in self._fin:
            if b >= end:
                return ids + (self._encode(a, end) if end > a else [])
            ids += unit
        return ids + self._encode(self._open, end) if end > self._open else ids

    def _release(self) -> None:
        """Releases final units while no sentence end inside them can end the segment: every
        sentence end before the open piece is decided, and a later one inside a unit would
        hold at most (released + `_max_tokens(unit)` - 1) tokens."""
        decided = self._piece + 1
        while self._fin:
            a, b, unit = self._fin[0]
            if b > decided and self._count + _max_tokens(self._text(a, b)) - 1 >= self._limit:
                break
            self._fin.popleft()
            self._ids += unit
            self._count, self._front = self._count + len(unit), b

    def _take(self) -> list[Release]:
        if not self.speakable:
            return []  # held until the text proves speakable, so an unspeakable one releases nothing
        out = self._done + ([Release(tuple(self._ids))] if self._ids else [])
        self._done, self._ids = [], []
        return out


def segment_tokens(tokenizer: TextTokenizer, text: str,
                   max_segment_tokens: int = MAX_SEGMENT_TOKENS) -> list[tuple[int, ...]]:
    """The token ids of each segment of a whole text, by the same rules as a stream of it."""
    T.clean_text(text)  # refuses what a request refuses, with its messages
    # The raw text, not the cleaned one: clean_text drops format characters after NFC, so its
    # output may not be NFC ("a\u00ad\u0301" -> "a\u0301") and cleaning it again can change it.
    stream = TextStream(tokenizer, max_segment_tokens)
    segments, current = [], []
    for release in stream.push(text) + stream.end():
        current += release.tokens
        if release.segment_end:
            segments.append(tuple(current))
            current = []
    return segments
