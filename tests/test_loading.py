"""Loading checkpoints and the errors a user sees for bad input (no reference needed)."""

import json
import shutil

import mlx.core as mx
import numpy as np
import pytest

import mlx_qwen3tts
from tiny import make_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv")


@pytest.fixture(scope="module")
def tts(tiny_dir):
    return mlx_qwen3tts.load(tiny_dir)


@pytest.fixture
def copy_of(tiny_dir, tmp_path):
    def make():
        dst = tmp_path / "copy"
        shutil.copytree(tiny_dir, dst)
        return dst
    return make


def test_public_properties(tts):
    assert tts.kind == "custom_voice" and tts.sample_rate == 24000
    assert tts.speakers == ["eric", "vivian"] and tts.languages == ["auto", "chinese", "english"]
    assert tts.sampling.max_new_tokens == 8192  # from generation_config.json


def test_generation_is_seed_reproducible_and_frames_are_valid(tts):
    a = tts.generate_codes("hello world", speaker="vivian", seed=7, max_new_tokens=12)
    b = tts.generate_codes("hello world", speaker="Vivian", seed=7, max_new_tokens=12)
    c = tts.generate_codes("hello world", speaker="vivian", seed=8, max_new_tokens=12)
    assert a.dtype == np.int32 and a.shape[1] == 16 and 1 <= a.shape[0] <= 11
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert (a >= 0).all() and (a < 2048).all()


def test_dtype_is_auto_kept_or_given(tiny_dir, tmp_path):
    bf16 = make_tiny_checkpoint(tmp_path / "bf16", dtype=mx.bfloat16)
    auto = mx.float32 if mx.default_device() == mx.cpu else mx.bfloat16  # half precision is slow on the CPU
    assert mlx_qwen3tts.load(bf16).model.talker.codec_head.weight.dtype == auto
    assert mlx_qwen3tts.load(bf16, dtype=None).model.talker.codec_head.weight.dtype == mx.bfloat16
    assert mlx_qwen3tts.load(bf16, dtype="float32").model.talker.codec_head.weight.dtype == mx.float32
    assert mlx_qwen3tts.load(tiny_dir, dtype=mx.bfloat16).model.talker.codec_head.weight.dtype == mx.bfloat16


def test_sharded_weights_load(copy_of):
    folder = copy_of()
    weights = mx.load(str(folder / "model.safetensors"))
    keys = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        mx.save_safetensors(str(folder / name), {k: weights[k] for k in part})
    (folder / "model.safetensors").unlink()
    index = {"weight_map": {k: name for name, part in shards.items() for k in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert mlx_qwen3tts.load(folder).kind == "custom_voice"


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text(tts, text):
    with pytest.raises(ValueError, match="empty"):
        tts.generate_codes(text, speaker="vivian")


def test_unknown_speaker_lists_the_valid_ones(tts):
    with pytest.raises(ValueError, match="eric, vivian"):
        tts.generate_codes("hi", speaker="nobody")
    with pytest.raises(ValueError, match="needs a speaker"):
        tts.generate_codes("hi")


def test_unknown_language_lists_the_valid_ones(tts):
    with pytest.raises(ValueError, match="auto, chinese, english"):
        tts.generate_codes("hi", speaker="vivian", language="elvish")


def test_wrong_mode_arguments(tmp_path):
    vd = mlx_qwen3tts.load(make_tiny_checkpoint(tmp_path / "vd", kind="voice_design"))
    with pytest.raises(ValueError, match="CustomVoice"):
        vd.generate_codes("hi", speaker="vivian", instruct="calm")
    assert vd.generate_codes("hi", instruct="A calm voice", max_new_tokens=3).shape == (2, 16)


def test_missing_folder_and_files(tmp_path, copy_of):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        mlx_qwen3tts.load(tmp_path / "nowhere")
    folder = copy_of()
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=f"model.safetensors.*{folder}"):
        mlx_qwen3tts.load(folder)


def test_missing_tokenizer_file_is_named(copy_of):
    folder = copy_of()
    (folder / "merges.txt").unlink()
    with pytest.raises(FileNotFoundError, match="merges.txt"):
        mlx_qwen3tts.load(folder)


def test_not_a_qwen3_tts_checkpoint(copy_of):
    folder = copy_of()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="not a Qwen3-TTS checkpoint"):
        mlx_qwen3tts.load(folder)


def test_corrupt_weights(copy_of):
    folder = copy_of()
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="damaged or incomplete"):
        mlx_qwen3tts.load(folder)


def test_weights_that_do_not_fit_are_listed(copy_of):
    folder = copy_of()
    weights = mx.load(str(folder / "model.safetensors"))
    weights.pop("talker.codec_head.weight")
    weights["talker.model.norm.weight"] = mx.zeros((7,))
    weights["talker.extra.weight"] = mx.zeros((1,))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    with pytest.raises(ValueError, match="1 missing: talker.codec_head.weight.*1 unexpected.*1 wrong shape"):
        mlx_qwen3tts.load(folder)


def test_bad_dtype(tiny_dir):
    with pytest.raises(ValueError, match="unknown dtype"):
        mlx_qwen3tts.load(tiny_dir, dtype="float8")


def test_cloning_needs_a_base_model(tts, tmp_path):
    with pytest.raises(ValueError, match="Base model"):
        tts.clone_voice(tmp_path / "ref.wav", "hello")
    voice = mlx_qwen3tts.Voice(np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="voice= needs a Base model"):
        tts.generate_codes("hi", speaker="vivian", voice=voice)


def test_voice_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mlx_qwen3tts.Voice.load(tmp_path / "none.voice")
    (tmp_path / "junk.voice").write_bytes(b"not a voice")
    with pytest.raises(ValueError, match="not a voice file"):
        mlx_qwen3tts.Voice.load(tmp_path / "junk.voice")
    voice = mlx_qwen3tts.Voice(np.arange(4, dtype=np.float32), np.ones((3, 16), np.int32), "hi there", (1, 2))
    loaded = mlx_qwen3tts.Voice.load(voice.save(tmp_path / "v.voice"))
    np.testing.assert_array_equal(loaded.x_vector, voice.x_vector)
    np.testing.assert_array_equal(loaded.ref_codes, voice.ref_codes)
    assert (loaded.ref_text, loaded.ref_text_ids) == ("hi there", (1, 2))


def test_safetensors_format_is_read_from_the_headers(tmp_path):
    from mlx_qwen3tts.weights import safetensors_format

    mx.save_safetensors(str(tmp_path / "model.safetensors"), {"a": mx.zeros(2)}, metadata={"format": "mlx"})
    assert safetensors_format(tmp_path) == "mlx"
    mx.save_safetensors(str(tmp_path / "model.safetensors"), {"a": mx.zeros(2)})
    assert safetensors_format(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 64)  # damaged: no format, no crash
    assert safetensors_format(tmp_path) is None
    (tmp_path / "model.safetensors").unlink()
    for name, fmt in (("a.safetensors", "pt"), ("b.safetensors", "mlx")):
        mx.save_safetensors(str(tmp_path / name), {name: mx.zeros(2)}, metadata={"format": fmt})
    index = {"weight_map": {"a.safetensors": "a.safetensors", "b.safetensors": "b.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert safetensors_format(tmp_path) is None  # shards that disagree name no format
    index["weight_map"].pop("b.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert safetensors_format(tmp_path) == "pt"
