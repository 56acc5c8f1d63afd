"""Runaway guards, long text, flat memory, concurrency and bad input (tiny checkpoints, no torch)."""

import json
import shutil
import threading

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts.guards import Guards
from mlx_qwen3tts.text import clean_text, segment_tokens
from tiny import make_tiny_checkpoint

WORDS = ("the quick brown fox jumps over a lazy dog while seven small birds sing softly "
         "near an old stone bridge and the river runs on").split()


def tiny_with_head(tmp_path, name, edit) -> mlx_qwen3tts.TTS:
    """A tiny checkpoint whose codec head is rewritten by `edit(head) -> head` to force a fault."""
    folder = make_tiny_checkpoint(tmp_path / name, seed=3)
    weights = mx.load(str(folder / "model.safetensors"))
    weights["talker.codec_head.weight"] = edit(np.asarray(weights["talker.codec_head.weight"]))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    return mlx_qwen3tts.load(folder)


@pytest.fixture(scope="module")
def never_eos(tmp_path_factory):
    """EOS can never win: its row is zero while every audio row is large."""
    def edit(head):
        rng = np.random.default_rng(0)
        head = rng.normal(size=head.shape).astype(np.float32) * 5
        head[2048:] = 0
        return mx.array(head)
    return tiny_with_head(tmp_path_factory.mktemp("never_eos"), "cv", edit)


@pytest.fixture(scope="module")
def stuck(tmp_path_factory):
    """All logits tie, so greedy drawing always picks code 0: one sound for ever."""
    return tiny_with_head(tmp_path_factory.mktemp("stuck"), "cv", lambda head: mx.zeros(head.shape))


@pytest.fixture(scope="module")
def tts(tiny_tts):
    return tiny_tts


GREEDY = dict(speaker="vivian", temperature=0, subtalker_temperature=0)


def test_budget_guard_stops_a_model_that_never_ends(never_eos):
    audio = never_eos.generate("hello world", **GREEDY, repetition_penalty=1.3, max_new_tokens=2000)
    budget = Guards().budget(len(never_eos.tokenizer.encode("hello world")))
    assert audio.finish_reason in ("budget", "repetition")
    assert 0 < len(audio.codes) <= budget < 200
    assert len(audio.samples) > 0 and np.abs(audio.samples).max() > 0


def test_without_guards_the_reference_behaviour_is_unchanged(never_eos):
    codes = never_eos.generate_codes("hello world", **GREEDY, max_new_tokens=120, guards=False)
    assert codes.shape == (119, 16)  # ran to max_new_tokens, as the reference would
    audio = never_eos.generate("hello world", **GREEDY, max_new_tokens=120, guards=False)
    assert audio.finish_reason == "max_new_tokens"
    np.testing.assert_array_equal(audio.codes, codes)


def test_repetition_guard_stops_a_stuck_model_and_drops_the_stuck_sound(stuck):
    guards = Guards(repeat_frames=20)
    audio = stuck.generate("hello world", **GREEDY, max_new_tokens=500, guards=guards)
    assert audio.finish_reason == "repetition"
    assert (audio.codes[:, 0] == 0).all() and len(audio.codes) == 20
    assert len(audio.samples) == 0  # every frame was the stuck sound
    chunks = list(stuck.stream("hello world", **GREEDY, max_new_tokens=500, guards=guards))
    assert chunks[-1].is_last and chunks[-1].finish_reason == "repetition"
    assert sum(len(c.samples) for c in chunks) == 20 * 1920


def test_retry_uses_another_seed(never_eos, caplog):
    with caplog.at_level("WARNING", logger="mlx_qwen3tts"):
        audio = never_eos.generate("hello world", speaker="vivian", seed=1, retries=1,
                                   guards=Guards(slack_frames=5, frames_per_token=1.0))
    assert audio.finish_reason == "budget" and "retrying" in caplog.text


def test_trailing_silence_is_trimmed_on_request(tts):
    plain = tts.generate("hello world", **GREEDY, max_new_tokens=30)
    trimmed = tts.generate("hello world", **GREEDY, max_new_tokens=30, trim_silence=True,
                           guards=Guards(silence_rms=float(np.abs(plain.samples).max()) * 2))
    assert len(trimmed.samples) < len(plain.samples)


def test_long_text_streams_in_segments_without_a_seam(tts):
    text = " ".join(WORDS[i % len(WORDS)] for i in range(3000)) + "."
    text = text.replace(" and ", ". And ")
    chunks = list(tts.stream(text, **GREEDY, max_new_tokens=4))
    assert chunks[-1].is_last and [c.index for c in chunks] == list(range(len(chunks)))
    frames = chunks[-1].frames
    assert len(np.concatenate([c.samples for c in chunks])) == frames * 1920
    segments = len(segment_tokens(tts.tokenizer, text))
    assert segments >= 10 and frames == 3 * segments  # every segment spoke, back to back


def test_memory_stays_flat_over_fifty_requests(tts):
    peaks = []
    for i in range(50):
        mx.reset_peak_memory()
        tts.generate("hello world, hello again", speaker="vivian", seed=i, max_new_tokens=12)
        peaks.append(mx.get_peak_memory())
    assert peaks[49] <= peaks[4] * 1.10


def test_two_threads_get_their_own_results(tts):
    expected = {s: tts.generate_codes("hello there", speaker="vivian", seed=s, max_new_tokens=15) for s in (1, 2)}
    got, errors = {}, []

    def work(seed):
        try:
            got[seed] = tts.generate("hello there", speaker="vivian", seed=seed, max_new_tokens=15).codes
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s in (1, 2):
        np.testing.assert_array_equal(got[s], expected[s])


def test_nested_generation_in_one_thread_runs_beside_the_open_stream(tts):
    alone = tts.generate("again", speaker="vivian", seed=3, max_new_tokens=6).codes
    stream = tts.stream("hello world", speaker="vivian", max_new_tokens=10)
    next(stream)
    # The open stream's batch takes the second one in: no wait for itself, the same codes.
    np.testing.assert_array_equal(tts.generate("again", speaker="vivian", seed=3, max_new_tokens=6).codes, alone)
    assert list(stream)[-1].is_last


@pytest.mark.parametrize("text,message", [
    ("", "text is empty"), (" \n\t ", "text is empty"), ("?!... —", "no letters or digits"),
    ("\u200b\u200b", "text is empty"), ("x" * 1_000_000, "at most 100,000"),
])
def test_bad_text(tts, text, message):
    with pytest.raises(ValueError, match=message):
        tts.generate(text, speaker="vivian")


def test_text_hygiene():
    assert clean_text("Cafe\u0301 \x00 ok\u200b!\r\n\n\n Next  line") == "Café ok!\n\nNext line"


def test_checkpoint_without_speech_tokenizer(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "cv")
    shutil.rmtree(folder / "speech_tokenizer")
    with pytest.raises(FileNotFoundError, match="speech_tokenizer/ folder is missing"):
        mlx_qwen3tts.load(folder)


def test_config_with_a_missing_section(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "cv")
    config = json.loads((folder / "config.json").read_text())
    del config["talker_config"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a Qwen3-TTS checkpoint"):
        mlx_qwen3tts.load(folder)
