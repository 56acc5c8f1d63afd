"""Sentence splitting and duration estimates for the speak pipeline."""

import re

import pytest

from mlx_qwen3tts.text import estimate_seconds, split_sentences, weight


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Wait! Really?! Yes.", ["Wait!", "Really?!", "Yes."]),
        ("Dr. Smith met Mrs. Jones. They talked.", ["Dr. Smith met Mrs. Jones.", "They talked."]),
        ("Use e.g. this one. Or i.e. that.", ["Use e.g. this one.", "Or i.e. that."]),
        ("J. R. R. Tolkien wrote it. Read it.", ["J. R. R. Tolkien wrote it.", "Read it."]),
        ("It is No. 5 on the list. I said no. Fine.", ["It is No. 5 on the list.", "I said no.", "Fine."]),
        ("Pi is 3.14159 and costs $2.50 today. Go.", ["Pi is 3.14159 and costs $2.50 today.", "Go."]),
        ("Version 2.0 is out. See example.com for more.", ["Version 2.0 is out.", "See example.com for more."]),
        ("Well... maybe. Or not...", ["Well... maybe.", "Or not..."]),
        ('"Stop." She left. (Quietly.) Done', ['"Stop."', "She left.", "(Quietly.)", "Done"]),
        ("你好。今天天气很好！你呢？我很好", ["你好。", "今天天气很好！", "你呢？", "我很好"]),
        ("「行こう。」と彼は言った。はい", ["「行こう。」", "と彼は言った。", "はい"]),
        ("Line one\ncontinues here.\n\nNew paragraph without a stop\n\nThird", [
            "Line one continues here.", "New paragraph without a stop", "Third"]),
    ],
)
def test_split(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_blank_text_has_no_sentences(text):
    assert split_sentences(text) == []


def test_long_sentence_is_cut_at_clause_marks():
    clause = "the quick brown fox jumps over the lazy dog"
    text = ", ".join([clause] * 20) + "."
    parts = split_sentences(text, max_chars=100)
    assert len(parts) > 1
    assert all(weight(p) <= 100 for p in parts)
    assert all(p.endswith(",") for p in parts[:-1])  # clause boundaries, not mid-word
    assert squash("".join(parts)) == squash(text)


def test_long_sentence_without_clauses_is_cut_at_spaces():
    text = " ".join(f"word{i}" for i in range(200))
    parts = split_sentences(text, max_chars=60)
    assert all(weight(p) <= 60 for p in parts)
    assert " ".join(parts).split() == text.split()  # no word broken or lost


def test_long_cjk_without_punctuation_is_cut_by_weight():
    text = "字" * 500
    parts = split_sentences(text, max_chars=90)
    assert all(len(p) <= 30 for p in parts)  # a CJK character weighs three
    assert "".join(parts) == text


def test_nothing_is_lost_on_mixed_text():
    text = "Mr. Li said 你好。Then, at 3.5 km, he stopped! Why? Nobody knows... The end."
    assert squash("".join(split_sentences(text))) == squash(text)


def test_estimates_grow_with_text_and_weigh_cjk_more():
    assert estimate_seconds("") == 0
    assert estimate_seconds("Hello there, how are you today?") > estimate_seconds("Hello.")
    assert estimate_seconds("你好世界") > estimate_seconds("abcd")
    assert 1.0 < estimate_seconds("The quick brown fox jumps over the lazy dog.") < 6.0
