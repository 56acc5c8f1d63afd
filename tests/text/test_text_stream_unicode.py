"""The Unicode facts incremental cleaning rests on, and cleaning under random splits."""

import random
import re
import sys
import unicodedata

from mlx_qwen3tts.text.clean import Cleaner, _visible, clean_text, nfc_stable
from test_text_stream import FRAGMENTS

ALL = [chr(c) for c in range(sys.maxunicode + 1)]


def _compositions() -> list[tuple[str, str, str]]:
    """(first, second, composite) for every canonical pair that NFC composes (Hangul aside)."""
    pairs = []
    for c in ALL:
        d = unicodedata.decomposition(c)
        if d and not d.startswith("<") and len(parts := d.split()) == 2:
            first, second = chr(int(parts[0], 16)), chr(int(parts[1], 16))
            if unicodedata.normalize("NFC", first + second) == c:
                pairs.append((first, second, c))
    return pairs


def test_regex_whitespace_is_isspace():
    # The cleaner splits runs with `\s` and the splitter skips spaces with isspace: the same set.
    space = re.compile(r"\s")
    assert [c for c in ALL if bool(space.match(c)) != c.isspace()] == []


def test_nfc_never_joins_a_stable_character_to_what_precedes_it():
    seconds = {second for _, second, _ in _compositions()} | {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}
    for c in ALL:
        if nfc_stable(c):
            first = unicodedata.normalize("NFD", c)[0]
            assert unicodedata.combining(first) == 0 and first not in seconds, hex(ord(c))
    # Whitespace, the hint's safe place, is stable: a space always lets the text before it out.
    assert all(nfc_stable(c) for c in ALL if c.isspace())


def test_a_visible_stable_character_stays_visible():
    # The cleaner ends a whitespace run as soon as such a character arrives, before NFC is done with it.
    composites = [c for _, _, c in _compositions()]
    for c in [c for c in ALL if nfc_stable(c) and _visible(c)]:
        assert _visible(unicodedata.normalize("NFC", c)[0]), hex(ord(c))
    assert all(_visible(c) for c in composites)


def test_nfc_keeps_letters_and_digits():
    # So whether held raw text has something to speak can be read before it is normalized.
    assert [c for c in ALL if c.isalnum() != any(x.isalnum() for x in unicodedata.normalize("NFD", c))] == []
    for first, second, composite in _compositions():
        assert composite.isalnum() == (first.isalnum() or second.isalnum()), hex(ord(composite))


def test_normalizing_at_stable_cuts_is_normalizing_the_whole():
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 30)))
        cuts = [i for i in range(1, len(text)) if nfc_stable(text[i])]
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        assert "".join(unicodedata.normalize("NFC", p) for p in pieces) == unicodedata.normalize("NFC", text)


def _random_split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, len(text))))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


def test_cleaning_piece_by_piece_is_clean_text():
    rng = random.Random(1)
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40)))
        cleaner = Cleaner()
        out = "".join(cleaner.feed(p) for p in _random_split(text, rng)) + cleaner.feed("", final=True)
        try:
            expected = clean_text(text)
        except ValueError:
            assert not cleaner.speakable
            continue
        assert out == expected and cleaner.speakable
        checked += 1
    assert checked > 2000
