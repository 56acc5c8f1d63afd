"""Interim: the whole text at the end (the incremental version replaces this file)."""

from __future__ import annotations

from dataclasses import dataclass

from .prompt import tokenize
from .text import MAX_CHARS, clean_text, segment
from .tokenizer import TextTokenizer

MAX_SEGMENT_TOKENS = 250


@dataclass(frozen=True)
class Release:
    tokens: tuple[int, ...]
    segment_end: bool = False


class TextStream:
    def __init__(self, tokenizer: TextTokenizer, max_segment_tokens: int = MAX_SEGMENT_TOKENS):
        self._tok, self._max, self._raw = tokenizer, max_segment_tokens, []
        self._chars = 0

    def push(self, piece: str) -> list[Release]:
        if not isinstance(piece, str):
            raise TypeError(f"text must be a str, not {type(piece).__name__}")
        self._chars += len(piece)
        if self._chars > MAX_CHARS:
            raise ValueError(f"text is {self._chars:,} characters long; at most {MAX_CHARS:,} fit one request")
        self._raw.append(piece)
        return []

    @property
    def speakable(self) -> bool:
        return any(ch.isalnum() for piece in self._raw for ch in piece)

    def end(self) -> list[Release]:
        try:
            text = clean_text("".join(self._raw))
        except ValueError:
            return []
        pieces = segment(text, lambda s: len(self._tok.encode(s)), self._max)
        return [Release(tokenize(self._tok, p).text, True) for p in pieces]


def segment_tokens(tokenizer, text: str, max_segment_tokens: int = MAX_SEGMENT_TOKENS) -> list[tuple[int, ...]]:
    text = clean_text(text)
    stream = TextStream(tokenizer, max_segment_tokens)
    stream.push(text)
    return [r.tokens for r in stream.end()]
