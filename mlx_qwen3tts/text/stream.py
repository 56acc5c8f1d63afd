"""Text that arrives in pieces (LLM deltas), turned into each segment's token ids as they become final.

The rules are the whole text's: `clean_text`, sentences as `split_sentences` finds them, and
segments of whole sentences that end at the first sentence end where they hold at least
`max_segment_tokens` tokens (or at the end of the text). A token is released once no later
text can change it, so every split of a text releases the same tokens, and `segment_tokens`
runs the same machinery on a whole text.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .clean import MAX_CHARS, Cleaner, clean_text, nfc_stable
from .sentences import SentenceEnd, SentenceScanner

if TYPE_CHECKING:
    from ..tokenizer import TextTokenizer

MAX_SEGMENT_TOKENS = 250
# More tokens than any text a request takes can make (a character is at most 4 UTF-8 bytes,
# and NFC at most triples them), so a segment ends only with its text.
_ONE_SEGMENT = 12 * MAX_CHARS + 1
_PIECE = 1024  # characters per push when a whole text goes through a stream


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
    if ch.isalpha():
        return "L"
    if ch.isspace() or unicodedata.category(ch)[0] == "N":
        return None
    return "P"


class TextStream:
    """One utterance's text, pushed piece by piece.

    Positions are offsets in the cleaned text. A *unit* is a pre-token or an added token: BPE
    never merges across units, so a unit followed by another is final.
    """

    def __init__(self, tokenizer: TextTokenizer, max_segment_tokens: int = MAX_SEGMENT_TOKENS):
        if not isinstance(max_segment_tokens, int) or max_segment_tokens < 2:
            raise ValueError(f"max_segment_tokens must be an int of at least 2, not {max_segment_tokens!r}")
        self._tok = tokenizer
        self._limit = max_segment_tokens
        added = tokenizer.added_tokens()
        # Text ending in one of these may still become an added token (a whole one may grow longer).
        self._prefixes = {t[:i] for t in added for i in range(1, len(t))}
        self._longest = max(map(len, added), default=1)
        self._clean = Cleaner()
        self._raw_chars = 0
        self._ended = False
        self._sentences = SentenceScanner(2 * max_segment_tokens)
        # The released frontier and the segment's token count so far; final units past the
        # frontier; the open region that is re-encoded, how far it was looked at, and how far it
        # is known to be one kind of character.
        self._front = self._count = 0
        self._fin: deque[tuple[int, int, list[int]]] = deque()
        self._open = self._seen = self._same = 0
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
        return self._sentences.spans

    def push(self, piece: str) -> list[Release]:
        """Adds a piece of the text; returns the tokens that became final."""
        if not isinstance(piece, str):
            raise TypeError(f"text pieces must be str, not {type(piece).__name__}")
        if self._ended:
            raise RuntimeError("this text stream has ended")
        if self._raw_chars + len(piece) > MAX_CHARS:
            raise ValueError(f"the text passes {MAX_CHARS:,} characters, the most one request takes "
                             "(about two hours of speech): split it")
        self._raw_chars += len(piece)
        self._add(self._clean.feed(piece))
        self._examine(self._sentences.end, skip=True)
        self._release()
        return self._take()

    def end(self) -> list[Release]:
        """The end of the text: releases the rest, the last Release ending the last segment;
        nothing if the text has nothing to speak."""
        if self._ended:
            return []
        self._ended = True
        self._add(self._clean.feed("", final=True))
        for end in self._sentences.finish():
            self._sentence_end(end)
        return self._take()

    def _add(self, cleaned: str) -> None:
        for end in self._sentences.add(cleaned):
            self._sentence_end(end)
        if cleaned:
            self._sentences.trim(min(self._front, self._open))

    def _sentence_end(self, sentence: SentenceEnd) -> None:
        """A sentence ends: the segment ends here if it now holds enough tokens, or if the text ends."""
        end, after = sentence.end, sentence.next
        if end < self._front:
            return  # inside a unit released because no sentence end before it could reach the limit
        rest = self._rest(end)
        if after is not None and self._count + len(rest) < self._limit:
            return
        self._ids += rest
        self._done.append(Release(tuple(self._ids), True))
        self._ids, self._count, self._fin = [], 0, deque()
        if after is not None:
            self._front = self._open = self._seen = self._same = after

    # ------------------------------------------------------------------ tokens

    def _encode(self, a: int, b: int) -> list[int]:
        self.encoded_chars += b - a
        return self._tok.encode(self._sentences.text(a, b))

    def _examine(self, upto: int, skip: bool = False) -> None:
        """Encodes the open region up to `upto`: its units before the last one, and before any
        tail that may yet become an added token, are final. The region is only cut where NFC
        cannot join the text across (`nfc_stable`), since the tokenizer normalizes it again:
        dropping format characters after NFC can leave "a\u0327\u0301" to compose later."""
        if upto <= max(self._seen, self._open):
            return
        text = self._sentences.text
        if skip and upto - self._open > 8 and self._seen > self._open:
            # Letters after letters (or symbols after symbols) only lengthen the last unit;
            # each push checks only its own characters against the last one seen.
            kinds = {_kind(c) for c in text(max(self._seen, self._same) - 1, upto)}
            if len(kinds) == 1 and None not in kinds:
                self._same = upto
                return
        tail = text(self._open, upto)
        self.encoded_chars += len(tail)
        units, n = self._tok.units(tail), len(tail)
        hold = n - next((k for k in range(min(self._longest - 1, n), 0, -1) if tail[n - k:] in self._prefixes), 0)
        # Offsets are exact when normalizing changes nothing; else a cut is checked by decoding.
        exact = unicodedata.is_normalized("NFC", tail)
        cut, ids = 0, []
        for start, unit in units:
            if start >= hold:
                break
            if (start > cut and nfc_stable(tail[start]) and
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
        sentence end before the open sentence is decided, and a later one inside a unit would
        hold at most (released + `_max_tokens(unit)` - 1) tokens."""
        decided = self._sentences.open_start + 1
        while self._fin:
            a, b, unit = self._fin[0]
            if b > decided and self._count + _max_tokens(self._sentences.text(a, b)) - 1 >= self._limit:
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
    clean_text(text)  # refuses what a request refuses, with its messages
    # The raw text, not the cleaned one: clean_text drops format characters after NFC, so its
    # output may not be NFC ("a\u00ad\u0301" -> "a\u0301") and cleaning it again can change it.
    stream = TextStream(tokenizer, max_segment_tokens)
    segments, current = [], []
    # In pieces, as any split gives the same tokens: a push releases what it made final, so
    # each sentence end looks back over one piece's units at most, not the whole text's.
    pieces = (text[i:i + _PIECE] for i in range(0, len(text), _PIECE))
    for release in [r for piece in pieces for r in stream.push(piece)] + stream.end():
        current += release.tokens
        if release.segment_end:
            segments.append(tuple(current))
            current = []
    return segments


def text_tokens(tokenizer: TextTokenizer, text: str) -> tuple[int, ...]:
    """A whole text's token ids as one segment (no sentence end can reach the limit), by the
    same rules as a stream of it."""
    (tokens,) = segment_tokens(tokenizer, text, _ONE_SEGMENT)
    return tokens

