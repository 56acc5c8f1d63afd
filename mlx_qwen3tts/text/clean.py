"""Text hygiene: what a request's text becomes before its sentences are found and tokenized."""

from __future__ import annotations

import re
import unicodedata

# About two hours of speech; more in one request is almost surely a mistake.
MAX_CHARS = 100_000

_RUNS = re.compile(r"\s+|\S+")


def scrub(text: str) -> str:
    """Turns control characters but newlines (tabs, carriage returns...) into spaces, since they
    separate words, and drops the other C* characters (zero-width spaces, byte-order marks...)."""
    return "".join(ch if ch == "\n" or not unicodedata.category(ch).startswith("C") else
                   " " if unicodedata.category(ch) == "Cc" else "" for ch in text)


def nfc_stable(ch: str) -> bool:
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
        cut = len(raw) if final else next((i for i in range(len(raw) - 1, known - 1, -1) if nfc_stable(raw[i])), 0)
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
