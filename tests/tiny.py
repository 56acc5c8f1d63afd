"""Tiny random checkpoints written with MLX alone (no torch), for tests that need no reference."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from mlx_qwen3tts.codec import DecoderConfig, SpeechDecoder
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.models.qwen3_tts import Model

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(25)] + [
    "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>", "<|audio_pad|>"]


def byte_symbols() -> list[str]:
    """GPT-2 byte-level BPE: the printable symbol that stands for each byte value."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def write_text_tokenizer(folder: Path) -> None:
    """A byte-level BPE whose special tokens sit at the real Qwen ids (151643...): the 256 byte
    symbols, a few merges, and unreachable filler entries up to the special range."""
    symbols = byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    # "assistant" must be one token, as in the real vocabulary, for the prompt's slicing.
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w"), ("o", "r"), ("a", "s"), ("as", "s"),
              ("i", "s"), ("ass", "is"), ("t", "a"), ("n", "t"), ("ta", "nt"), ("assis", "tant")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab |= {f"<fill{i}>": i for i in range(len(vocab), 151643)}
    added = {str(151643 + i): {"content": t, "special": True} for i, t in enumerate(SPECIALS)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": added}), encoding="utf-8")


def tiny_config(kind: str = "custom_voice", size: str = "1b7") -> dict:
    talker = {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
        "vocab_size": 3072, "text_vocab_size": 151936, "text_hidden_size": 16, "num_code_groups": 16,
        "codec_eos_token_id": 2150,
        "codec_language_id": {"english": 2050, "chinese": 2055, "sichuan_dialect": 2062},
        "spk_id": {"vivian": 3065, "eric": 2875} if kind == "custom_voice" else {},
        "spk_is_dialect": {"vivian": False, "eric": "sichuan_dialect"} if kind == "custom_voice" else {},
        "code_predictor_config": {
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 8, "vocab_size": 2048, "num_code_groups": 16},
    }
    return {"model_type": "qwen3_tts", "tts_model_type": kind, "tts_model_size": size,
            "tokenizer_type": "qwen3_tts_tokenizer_12hz", "talker_config": talker,
            "speaker_encoder_config": {"enc_dim": 32}}


TINY_DECODER = {
    "codebook_size": 2048, "codebook_dim": 16, "latent_dim": 16, "decoder_dim": 32, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "head_dim": 8, "sliding_window": 72, "num_quantizers": 16, "upsample_rates": [8, 5, 4, 3],
    "upsampling_ratios": [2, 2],
}


def write_speech_tokenizer(folder: Path, seed: int = 0) -> None:
    """A tiny decoder saved in MLX layout (as a converted checkpoint stores it)."""
    folder.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    decoder = SpeechDecoder(DecoderConfig.from_dict(TINY_DECODER))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(decoder.parameters())))
    config = {"model_type": "qwen3_tts_tokenizer_12hz", "decoder_config": TINY_DECODER, "encoder_config": {}}
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def make_tiny_checkpoint(folder: Path, kind: str = "custom_voice", size: str = "1b7", seed: int = 0,
                         dtype: mx.Dtype = mx.float32) -> Path:
    """Writes config.json, model.safetensors, generation_config.json and tokenizer files."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = tiny_config(kind, size)
    mx.random.seed(seed)
    model = Model(ModelConfig.from_dict(raw))
    weights = {k: (v * 4).astype(dtype) if "embedding" in k else v.astype(dtype)
               for k, v in tree_flatten(model.parameters())}
    if kind == "base":
        raise NotImplementedError("tiny Base checkpoints need the official speaker-encoder layout")
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    (folder / "config.json").write_text(json.dumps(raw, indent=2))
    (folder / "generation_config.json").write_text(json.dumps({"max_new_tokens": 8192, "top_k": 50}))
    write_text_tokenizer(folder)
    write_speech_tokenizer(folder / "speech_tokenizer", seed)
    return folder
