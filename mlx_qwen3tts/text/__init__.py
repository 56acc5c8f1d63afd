"""The text side: text in, each generation segment's token ids out, as soon as they are final.

    clean.py      cleaning (`clean_text`, and `Cleaner` for text in pieces)
    length.py     how long a text is to say (`weight`, `estimate_seconds`)
    sentences.py  sentence ends (`split_sentences`, and `SentenceScanner` for text in pieces)
    stream.py     one utterance's segment tokens, released as they become final (`TextStream`)
    feed.py       a stream's utterances, written on one thread and read on another (`TextFeed`)
    pull.py       any text as a bound `TextFeed` (`as_feed`); an iterable pulled by a thread (`feed_from`)

Each module uses only the public names of those above it.
"""

from .clean import MAX_CHARS, Cleaner, clean_text
from .feed import Cancelled, SegmentText, TextFeed
from .length import estimate_seconds, weight
from .pull import as_feed, feed_from
from .sentences import SentenceEnd, SentenceScanner, split_sentences
from .stream import MAX_SEGMENT_TOKENS, Release, TextStream, segment_tokens, text_tokens

__all__ = [
    "MAX_CHARS",
    "MAX_SEGMENT_TOKENS",
    "Cancelled",
    "Cleaner",
    "Release",
    "SegmentText",
    "SentenceEnd",
    "SentenceScanner",
    "TextFeed",
    "TextStream",
    "as_feed",
    "clean_text",
    "estimate_seconds",
    "feed_from",
    "segment_tokens",
    "split_sentences",
    "text_tokens",
    "weight",
]
