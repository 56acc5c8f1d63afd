"""How long a text is to say: its weight in Latin-letter units, and a rough duration."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

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


def prefix_within(text: str, limit: int) -> int:
    """The longest prefix length of `text` whose weight is at most `limit`."""
    total = 0
    for i, ch in enumerate(text):
        total += CJK_WEIGHT if _CJK.match(ch) else 1
        if total > limit:
            return i
    return len(text)
