"""Prompt layouts, token by token, for every mode (no weights needed)."""

import pytest

from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.prompt import NONE, REF_FRAME, SPEAKER, TextIds, build_layout, resolve_language
from test_config import RELEASED_1B7_CUSTOM_VOICE

CFG = ModelConfig.from_dict(RELEASED_1B7_CUSTOM_VOICE)
PAD, BOS, EOS = 151671, 151672, 151673
THINK, NOTHINK, THINK_BOS, THINK_EOS, C_PAD, C_BOS = 2154, 2155, 2156, 2157, 2148, 2149
ROLE = (151644, 77091, 198)
IDS = TextIds(role=ROLE, text=(11, 12, 13))


def test_custom_voice_nonstreaming_layout():
    lay = build_layout(CFG, IDS, language_row=2050, speaker=3065, non_streaming_mode=True)
    assert len(lay) == 14  # 3 role + 6 prefix + (3 text + eos) + 1 bos
    assert lay.text == ROLE + (PAD, PAD, PAD, PAD, PAD, BOS) + (11, 12, 13, EOS, PAD)
    assert lay.codec == (NONE,) * 3 + (THINK, THINK_BOS, 2050, THINK_EOS, 3065, C_PAD) + (C_PAD,) * 4 + (C_BOS,)
    assert lay.trailing == (PAD,)


def test_custom_voice_streaming_text_layout():
    lay = build_layout(CFG, IDS, language_row=2050, speaker=3065, non_streaming_mode=False)
    assert len(lay) == 10
    assert lay.text[-1] == 11 and lay.codec[-1] == C_BOS
    assert lay.trailing == (12, 13, EOS)  # frame k is fed with text token k+1, then tts_eos once


def test_auto_language_uses_nothink_and_no_language_row():
    lay = build_layout(CFG, IDS, language_row=None, speaker=None, non_streaming_mode=False)
    assert lay.codec[3:7] == (NOTHINK, THINK_BOS, THINK_EOS, C_PAD)
    assert lay.text[3:7] == (PAD, PAD, PAD, BOS)
    assert len(lay) == 3 + 4 + 1


def test_instruct_block_has_no_codec_side():
    ids = TextIds(role=ROLE, text=(11,), instruct=(151644, 872, 198, 99, 151645, 198))
    lay = build_layout(CFG, ids, language_row=2050, speaker=None, non_streaming_mode=True)
    assert lay.text[:9] == ids.instruct + ROLE
    assert lay.codec[:9] == (NONE,) * 9


@pytest.mark.parametrize("language,speaker,row", [
    ("auto", "eric", 2062), ("Chinese", "Dylan", 2074), ("english", "eric", 2050),
    ("auto", "vivian", None), ("AUTO", None, None), (None, None, None), ("German", "vivian", 2053),
])
def test_language_and_dialect_rule(language, speaker, row):
    assert resolve_language(CFG, language, speaker) == row


@pytest.mark.parametrize("language", ["klingon", "sichuan_dialect"])
def test_unknown_language_lists_the_valid_ones(language):
    with pytest.raises(ValueError, match="english") as err:
        resolve_language(CFG, language, None)
    assert "dialect" not in str(err.value).split(":")[-1]


def icl_ids(ref_len, text_len):
    return TextIds(role=ROLE, text=tuple(range(20, 20 + text_len)), ref_text=tuple(range(40, 40 + ref_len)))


def test_icl_streaming_text_longer_than_codes():
    ids = icl_ids(ref_len=4, text_len=3)  # text_seq 8 > codec_seq 1 + 2
    lay = build_layout(CFG, ids, language_row=2050, speaker=SPEAKER, non_streaming_mode=False, ref_frames=2)
    assert lay.text[-3:] == (40, 41, 42) and lay.codec[-3:] == (C_BOS, REF_FRAME, REF_FRAME)
    assert lay.trailing == (43, 20, 21, 22, EOS)
    assert SPEAKER in lay.codec


def test_icl_streaming_codes_longer_than_text():
    ids = icl_ids(ref_len=1, text_len=1)  # text_seq 3 <= codec_seq 6
    lay = build_layout(CFG, ids, language_row=None, speaker=SPEAKER, non_streaming_mode=False, ref_frames=5)
    assert lay.text[-6:] == (40, 20, EOS, PAD, PAD, PAD)
    assert lay.codec[-6:] == (C_BOS,) + (REF_FRAME,) * 5
    assert lay.trailing == (PAD,)


def test_icl_nonstreaming():
    ids = icl_ids(ref_len=2, text_len=2)
    lay = build_layout(CFG, ids, language_row=2050, speaker=SPEAKER, non_streaming_mode=True, ref_frames=3)
    assert lay.text[-9:] == (40, 41, 20, 21, EOS, PAD, PAD, PAD, PAD)
    assert lay.codec[-9:] == (C_PAD,) * 5 + (C_BOS,) + (REF_FRAME,) * 3
    assert lay.trailing == (PAD,)


def test_icl_needs_reference_text():
    with pytest.raises(ValueError, match="transcript"):
        build_layout(CFG, IDS, language_row=None, speaker=SPEAKER, non_streaming_mode=False, ref_frames=3)
