"""Text pushed piece by piece releases exactly the whole text's segment tokens, whatever the split."""

import os
import random
import re

import pytest

from mlx_qwen3tts import prompt
from mlx_qwen3tts.text import (MAX_CHARS, Release, TextStream, clean_text, segment_tokens, split_sentences,
                               text_tokens)
from mlx_qwen3tts.tokenizer import TextTokenizer
from reference import requires_reference, text_tokenizer_dir
from tiny import write_text_tokenizer

IM_END = 151645
TEXTS = {
    "prose": 'Dr. Smith met Mrs. Jones at 3.14 p.m. yesterday. It is No. 5 on the list; I said no. Fine! '
             '"Stop." She left. (Quietly.) Use e.g. this one... or not? J. R. R. Tolkien wrote it. '
             "See example.com, version 2.0, for $2.50. It's DON'T and we're iPhone McDonald's.",
    "paragraphs": "First line\r\ncontinues here.\r\n\r\nSecond\tparagraph,\ttabs.\n\n\n  \n Third\u00a0one\u2028ends "
                  "\v here\x00.\n \n",
    "format": "zero\u200bwidth, soft\u00adhyphen, \ufeffbom and\u200d joiners\u2060 vanish.",
    "combining": "Cafe\u0301 na\u0308ive re\u0301sume\u0301, e\u0301\u0327 x\u0301\u0302 \u0301 A\u030a.",
    "emoji": "Thumbs 👍🏽 up! Family 👨\u200d👩\u200d👧 and flags 🇯🇵🇫🇷 ❤️ ok.",
    "chinese": "你好。今天天气很好！你呢？我很好，谢谢。他说：“这是一个非常重要的问题！”我们明天见",
    "japanese": "「行こう。」と彼は言った。はい、分かりました！日本語のテキストです",
    "korean": "안녕하세요. \u1112\u1161\u11ab\u1100\u1173\u11af 자모도 됩니다! 감사합니다",
    "specials": "Say <|im_end|> aloud, or <|im_start|>. Then <tts_text_bos> and <tts_text_bos_single>; <|im_e",
    "mixed": "Mr. Li said 你好。Then, at 3.5 km, he stopped! Why? Nobody knows... The end.",
    # Format characters dropped after NFC leave marks that the tokenizer's own NFC composes.
    "glued": "Ca\ufeff\u0327\u0301 de\u200b\u0301ja\u0300 \u1100\u200b\u1161\u200b\u11a8 "
             "x\u0301\u200b\u0327 ok.",
}
TEXTS["long"] = " ".join(TEXTS[k] for k in ("prose", "chinese", "combining", "emoji", "specials")) * 3
SMALL = (2, 5, 20)  # max_segment_tokens small enough for several segments
# Raw material for random texts: every kind of character the cleaner and splitter treat apart.
FRAGMENTS = (list("abcXYZ019 .,;:!?…\"'()[]」』）】。！？、，你好日本語한국<|>_-\n\t\r\x00\x0b")
             + ["\u0301", "\u0327", "\u11a8", "\u1161", "\u1100", "\u200b", "\u200d", "\ufeff", "\u00ad", "\u00a0",
                "\u2028", "\u2000", "👍", "🏽", "🇯", "🇵", "Mr.", "No. 5", "e.g.", "3.14", "it's", "<|im_end|>",
                "<tts_text_bos", "_single>", "  ", "\r\n\r\n", "\n \n"])


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    write_text_tokenizer(folder)
    toks = {"tiny": TextTokenizer.from_folder(folder)}
    if os.environ.get("MLX_QWEN3TTS_SKIP_REFERENCE") != "1":
        toks["qwen2"] = TextTokenizer.from_folder(text_tokenizer_dir())  # the real Qwen2 ranks
    return toks


@pytest.fixture(params=["tiny", pytest.param("qwen2", marks=requires_reference)])
def tok(request, tokenizers):
    return tokenizers[request.param]


def whole_segments(tok, text: str, limit: int) -> list[str]:
    """The segment rule spelled out on the whole text: split_sentences, located in the cleaned
    text; a segment ends at the first sentence end where its text holds `limit` tokens."""
    cleaned = clean_text(text)
    spans, pos = [], 0
    for sentence in split_sentences(cleaned, max_chars=2 * limit):
        pos = cleaned.index(sentence, pos)
        spans.append((pos, pos + len(sentence)))
        pos += len(sentence)
    segments, start = [], None
    for i, (a, b) in enumerate(spans):
        start = a if start is None else start
        if i == len(spans) - 1 or len(tok.encode(cleaned[start:b])) >= limit:
            segments.append(cleaned[start:b])
            start = None
    return segments


def stream(tok, pieces, limit, final=None) -> tuple[list[tuple[int, ...]], TextStream]:
    """Pushes the pieces, checking after each push that what is out is a prefix of `final`."""
    s, segments, current = TextStream(tok, limit), [], []
    flat = [t for seg in final for t in seg] if final is not None else None
    for piece in pieces + [None]:
        for release in s.push(piece) if piece is not None else s.end():
            assert isinstance(release, Release)
            current += release.tokens
            if release.segment_end:
                segments.append(tuple(current))
                current = []
        if flat is not None:
            out = [t for seg in segments for t in seg] + current
            assert out == flat[:len(out)] and segments == final[:len(segments)]
    assert not current
    return segments, s


def random_pieces(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, len(text) - 1))) if len(text) > 1 else []
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    return [x for p in pieces for x in ([p, ""] if rng.random() < 0.2 else [p])]


def splits(text: str, seeds: int = 8) -> list[list[str]]:
    by_word = re.findall(r"\s+|\S+", text)
    return [list(text), by_word, [text]] + [random_pieces(text, random.Random(s)) for s in range(seeds)]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_any_split_gives_the_whole_text_segments(tok, name):
    text = TEXTS[name]
    for limit in SMALL + (250,):
        expected = [prompt.tokenize(tok, s).text for s in whole_segments(tok, text, limit)]
        assert segment_tokens(tok, text, limit) == expected
        for pieces in splits(text):
            assert stream(tok, pieces, limit, expected)[0] == expected


def test_segment_tokens_are_the_prompt_slice(tok):
    # The prompt's [3:-5] slice is the segment text's own encoding: no segment starts with a space.
    for text in TEXTS.values():
        for limit in SMALL:
            for segment in whole_segments(tok, text, limit):
                assert prompt.tokenize(tok, segment).text == tuple(tok.encode(segment))


@pytest.mark.parametrize("name", ["prose", "chinese", "combining", "emoji", "specials", "korean", "glued"])
def test_every_two_piece_split(tok, name):
    text = TEXTS[name]
    expected = segment_tokens(tok, text, 20)
    for i in range(len(text) + 1):
        assert stream(tok, [text[:i], text[i:]], 20, expected)[0] == expected


def test_whitespace_pieces_interleaved(tok):
    rng = random.Random(7)
    for _ in range(20):
        words = re.findall(r"\s+|\S+", TEXTS["long"])
        extra = ["", " ", "\n", "\t", "\r\n\r\n", "\u200b"]
        pieces = [x for w in words for x in [w] + rng.choices(extra, k=rng.randint(0, 2))]
        text = "".join(pieces)
        expected = segment_tokens(tok, text, 5)
        assert stream(tok, pieces, 5, expected)[0] == expected


def test_short_text_is_one_segment_of_the_prompt_tokens(tok):
    for text in ["Hello.", "Hi there, how are you today?", "你好。", TEXTS["prose"], "  padded \n text \t"]:
        assert segment_tokens(tok, text) == [prompt.tokenize(tok, clean_text(text)).text]


def test_a_whole_text_as_one_segment_is_the_prompt_tokens(tok):
    # text_tokens (the route of TTS.prepare and iter_frames) is the stream's, never segmented.
    for text in list(TEXTS.values()) + [TEXTS["long"] * 8]:
        assert text_tokens(tok, text) == prompt.tokenize(tok, clean_text(text)).text
    assert len(segment_tokens(tok, TEXTS["long"] * 8)) > 1
    with pytest.raises(ValueError, match="text is empty"):
        text_tokens(tok, " ... ")


def test_long_text_makes_several_segments_on_sentence_ends(tok):
    text = TEXTS["long"]
    segments = whole_segments(tok, text, 20)
    assert len(segments) >= 3 and len(segment_tokens(tok, text, 20)) == len(segments)
    sentences = split_sentences(clean_text(text), max_chars=40)
    assert all(any(seg.endswith(s) for s in sentences) for seg in segments)
    assert all(len(tok.encode(seg)) >= 20 for seg in segments[:-1])


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_sentence_boundaries_match_split_sentences(tokenizers, name):
    text = TEXTS[name]
    cleaned = clean_text(text)
    for limit in (2, 20, 250):
        for pieces in splits(text, seeds=3):
            s = stream(tokenizers["tiny"], pieces, limit)[1]
            assert [cleaned[a:b] for a, b in s.sentence_spans] == split_sentences(cleaned, max_chars=2 * limit)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\r\n", "...", "!!! ??? —", "\u200b\ufeff", "「」。"])
def test_nothing_to_speak_releases_nothing(tok, text):
    s = TextStream(tok)
    assert all(s.push(c) == [] for c in text)
    assert not s.speakable and s.end() == []
    with pytest.raises(ValueError, match="text is empty"):
        segment_tokens(tok, text)


def test_speakable_follows_the_first_letter_or_digit(tok):
    s = TextStream(tok)
    assert s.push("... — ") == [] and not s.speakable
    releases = s.push("7")  # what was held is released once the text proves speakable
    assert s.speakable
    releases += s.end()
    assert releases[-1].segment_end and [t for r in releases for t in r.tokens] == tok.encode("... — 7")


def test_bad_input(tok):
    s = TextStream(tok)
    with pytest.raises(TypeError):
        s.push(b"bytes")
    with pytest.raises(TypeError):
        s.push(None)
    s.push("a" * (MAX_CHARS - 1))
    s.push("b")
    with pytest.raises(ValueError, match="100,000"):
        s.push("c")
    s.end()
    with pytest.raises(RuntimeError):
        s.push("more")
    with pytest.raises(ValueError):
        TextStream(tok, max_segment_tokens=1)


def test_english_word_is_released_once_the_next_word_starts(tokenizers):
    tok = tokenizers.get("qwen2") or pytest.skip("needs the real Qwen2 ranks")
    s = TextStream(tok)
    assert s.push("Hello") == [] and s.push(" ") == []
    assert s.push("b") == [Release(tuple(tok.encode("Hello")))]
    assert s.push("rave") == [] and s.push(", ") == [Release(tuple(tok.encode(" brave")))]


def test_chinese_clause_is_released_at_the_next_punctuation(tokenizers):
    tok = tokenizers.get("qwen2") or pytest.skip("needs the real Qwen2 ranks")
    s = TextStream(tok)
    assert all(s.push(c) == [] for c in "今天天气很好，")
    assert s.push("我") == [Release(tuple(tok.encode("今天天气很好")))]


def test_partial_added_token_is_held(tok):
    s = TextStream(tok)
    out = [t for piece in ["Say", " <|", "im", "_e", "nd"] for r in s.push(piece) for t in r.tokens]
    assert out == tok.encode("Say")  # " <|im_end" may still become " " and <|im_end|>
    rest = [t for r in s.push("|> now!") + s.end() for t in r.tokens]
    assert out + rest == tok.encode("Say <|im_end|> now!") and IM_END in rest


@pytest.mark.parametrize("text, per_push", [((TEXTS["prose"] + " ") * 40, 40), (TEXTS["chinese"] * 40, 40),
                                            ("word" * 2000 + ".", None)])
def test_work_per_push_is_bounded(tokenizers, text, per_push):
    tok = tokenizers.get("qwen2", tokenizers["tiny"])
    s, most = TextStream(tok), 0
    for c in text:
        before = s.encoded_chars
        s.push(c)
        most = max(most, s.encoded_chars - before)
    s.end()
    # Each push re-encodes about a word; a long letter run is re-encoded once it ends, not at every letter.
    assert s.encoded_chars <= 6 * len(text) and (per_push is None or most <= per_push)


def test_random_texts_and_splits(tok):
    rng = random.Random(2)
    for _ in range(150):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 80)))
        limit = rng.choice([2, 3, 8, 20])
        try:
            expected = segment_tokens(tok, text, limit)
        except ValueError:
            expected = []
        assert stream(tok, random_pieces(text, rng), limit, expected)[0] == expected


def test_hypothesis_texts_and_splits(tokenizers):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=60), st.lists(st.integers(0, 400)),
                      st.sampled_from([2, 5, 20, 250]), st.sampled_from(sorted(tokenizers)))
    def check(fragments, cuts, limit, name):
        text, tok = "".join(fragments), tokenizers[name]
        cuts = sorted({c for c in cuts if c <= len(text)})
        try:
            expected = segment_tokens(tok, text, limit)
        except ValueError:
            expected = []
        assert stream(tok, [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])], limit, expected)[0] == expected

    check()
