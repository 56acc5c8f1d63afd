"""Random-weight checkpoints in the official layout, written with MLX alone (no torch, no download).

One source for every random checkpoint the project makes: the tests' tiny ones and the
benchmark's real-size ones. The shapes are the released ones (or a tiny variant), so a benchmark
on them measures true per-frame cost offline; the text tokenizer is a byte-level BPE whose
merges keep the prompt's role tokens whole, so its prompts are shaped like the real ones.
Values are random: the speech is noise.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from .codec import DecoderConfig, SpeechDecoder
from .config import ModelConfig
from .models.qwen3_tts import Model

logger = logging.getLogger(__name__)

SIZES = ("tiny", "0.6b", "1.7b")
KINDS = ("custom_voice", "voice_design")
CACHE = Path("~/.cache/mlx-qwen3tts/bench").expanduser()

LANGUAGES = {"chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
             "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069}
DIALECTS = {"beijing_dialect": 2074, "sichuan_dialect": 2062}
SPEAKERS = {"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
            "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878}
SPEAKER_DIALECT = {"eric": "sichuan_dialect", "dylan": "beijing_dialect"}
# The tiny model speaks one plain and one dialect speaker, in two languages and one dialect.
TINY_LANGUAGES = {"english": 2050, "chinese": 2055, "sichuan_dialect": 2062}
TINY_SPEAKERS = {"vivian": 3065, "eric": 2875}

# (hidden, intermediate, layers, heads, kv heads, head_dim, text_hidden) per size.
TALKER = {"tiny": (32, 64, 2, 4, 2, 8, 16), "0.6b": (1024, 3072, 28, 16, 8, 128, 2048),
          "1.7b": (2048, 6144, 28, 16, 8, 128, 2048)}
PREDICTOR = {"tiny": (16, 32, 1, 2, 1, 8), "real": (1024, 3072, 5, 16, 8, 128)}
TINY_DECODER = {
    "codebook_size": 2048, "codebook_dim": 16, "latent_dim": 16, "decoder_dim": 32, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "head_dim": 8, "sliding_window": 72, "num_quantizers": 16, "upsample_rates": [8, 5, 4, 3],
    "upsampling_ratios": [2, 2],
}
# The special tokens from <|endoftext|> (151643) on, in id order; the TTS ones end the list.
SPECIALS = (["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(25)]
            + ["<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>", "<|audio_pad|>"])
FIRST_SPECIAL = 151643
# "assistant" and "user" must be one token each, as in the real vocabulary, for the prompt's slicing.
MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w"), ("o", "r"), ("a", "s"), ("as", "s"),
          ("i", "s"), ("ass", "is"), ("t", "a"), ("n", "t"), ("ta", "nt"), ("assis", "tant")]


def _block(hidden, inter, layers, heads, kv, head_dim) -> dict:
    return {"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
            "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1_000_000}


def model_config(size: str, kind: str, model_size: str | None = None) -> dict:
    """The `config.json` of a released checkpoint of this size and kind (or a tiny one).

    `model_size` ("0b6" or "1b7") labels the checkpoint; it decides, for example, whether a
    CustomVoice model takes instructions. By default it follows `size` (tiny: "1b7").
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")
    *block, text_hidden = TALKER[size]
    custom = kind == "custom_voice"
    tiny = size == "tiny"
    languages = TINY_LANGUAGES if tiny else LANGUAGES | (DIALECTS if custom else {})
    speakers = (TINY_SPEAKERS if tiny else SPEAKERS) if custom else {}
    predictor = _block(*PREDICTOR["tiny" if tiny else "real"]) | {
        "vocab_size": 2048, "num_code_groups": 16, "max_position_embeddings": 65536}
    talker = _block(*block) | {
        "max_position_embeddings": 32768, "vocab_size": 3072, "text_vocab_size": 151936,
        "text_hidden_size": text_hidden, "num_code_groups": 16, "codec_pad_id": 2148,
        "codec_bos_id": 2149, "codec_eos_token_id": 2150, "codec_think_id": 2154,
        "codec_nothink_id": 2155, "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
        "codec_language_id": languages, "spk_id": speakers,
        "spk_is_dialect": {s: SPEAKER_DIALECT.get(s, False) for s in speakers},
        "code_predictor_config": predictor}
    raw = {"model_type": "qwen3_tts", "tokenizer_type": "qwen3_tts_tokenizer_12hz",
           "tts_model_type": kind, "tts_model_size": model_size or ("0b6" if size == "0.6b" else "1b7"),
           "im_start_token_id": 151644, "im_end_token_id": 151645, "tts_pad_token_id": 151671,
           "tts_bos_token_id": 151672, "tts_eos_token_id": 151673, "talker_config": talker}
    if kind == "base":
        raw["speaker_encoder_config"] = {"enc_dim": TALKER[size][0]}
    return raw


def random_weights(module, dtype: mx.Dtype, scale: float = 0.02) -> dict[str, mx.array]:
    """Matrices (and conv kernels, embeddings) ~ N(0, scale); vectors keep the module's own init
    (ones for norms, zeros for biases). The module's init of the matrices is never evaluated."""
    return {k: (mx.random.normal(v.shape, dtype=mx.float32) * scale).astype(dtype) if v.ndim > 1
            else v.astype(dtype) for k, v in tree_flatten(module.parameters())}


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
    symbols, the merges that keep the role tokens whole, and unreachable filler up to the
    special range."""
    vocab = {s: i for i, s in enumerate(byte_symbols())}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab |= {f"<fill{i}>": i for i in range(len(vocab), FIRST_SPECIAL)}
    added = {str(FIRST_SPECIAL + i): {"content": t, "special": True} for i, t in enumerate(SPECIALS)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in MERGES) + "\n",
                                       encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": added}), encoding="utf-8")


def write_speech_tokenizer(folder: Path, size: str = "tiny", seed: int = 0) -> None:
    """The codec decoder in MLX layout, float32 as the official tokenizer is stored: the tiny
    one with MLX's own initialisation, the real one with random weights."""
    folder.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    if size == "tiny":
        block = dict(TINY_DECODER)
        decoder = SpeechDecoder(DecoderConfig.from_dict(block))
        weights = dict(tree_flatten(decoder.parameters()))
        # MLX leaves the codebooks at zero: then every code decodes alike, and audio could not
        # tell one request's codes from another's.
        weights |= {k: mx.random.normal(v.shape) for k, v in weights.items() if k.endswith("codebooks")}
    else:
        block = asdict(DecoderConfig())
        decoder = SpeechDecoder(DecoderConfig.from_dict(block))
        # Codebook vectors need a spread comparable to the latent they feed.
        weights = {k: v * 50 if k.endswith("codebooks") else v
                   for k, v in random_weights(decoder, mx.float32).items()}
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    config = {"model_type": "qwen3_tts_tokenizer_12hz", "decoder_config": block, "encoder_config": {},
              "encoder_valid_num_quantizers": 16, "input_sample_rate": 24000, "output_sample_rate": 24000,
              "decode_upsample_rate": 1920, "encode_downsample_rate": 1920}
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def write_checkpoint(folder: Path, size: str = "tiny", kind: str = "custom_voice", seed: int = 0,
                     dtype: mx.Dtype | None = None, model_size: str | None = None) -> Path:
    """Writes a random checkpoint into `folder` (replacing what is there); returns the folder.

    Tiny models keep MLX's initialisation, with the embedding tables scaled up so that a
    random model's tokens differ audibly; real sizes get N(0, 0.02). `dtype` defaults to
    float32 for tiny models and bfloat16 (as released) for real sizes. `config.json` is
    written last, so its presence marks a complete write.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)} "
                         "(Base needs the speaker encoder and codec encoder, not written here)")
    folder.mkdir(parents=True, exist_ok=True)
    raw = model_config(size, kind, model_size)
    mx.random.seed(seed)
    model = Model(ModelConfig.from_dict(raw))
    if size == "tiny":
        dtype = dtype or mx.float32
        weights = {k: (v * 4).astype(dtype) if "embedding" in k else v.astype(dtype)
                   for k, v in tree_flatten(model.parameters())}
    else:
        weights = random_weights(model, dtype or mx.bfloat16)
    mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "pt"})
    del model, weights
    (folder / "generation_config.json").write_text(json.dumps({
        "do_sample": True, "temperature": 0.9, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.05,
        "subtalker_dosample": True, "subtalker_temperature": 0.9, "subtalker_top_k": 50,
        "subtalker_top_p": 1.0, "max_new_tokens": 8192}, indent=2))
    write_text_tokenizer(folder)
    write_speech_tokenizer(folder / "speech_tokenizer", size, seed)
    (folder / "config.json").write_text(json.dumps(raw, indent=2))
    return folder


def default_folder(size: str, kind: str) -> Path:
    return CACHE / f"{size}-{kind}"


def make_checkpoint(size: str, kind: str, out: str | Path | None = None, seed: int = 0) -> Path:
    """The benchmark's random checkpoint of `size` and `kind`: written once, then reused."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")
    folder = Path(out).expanduser() if out else default_folder(size, kind)
    if (folder / "config.json").exists():
        logger.info("reusing the %s %s checkpoint in %s", size, kind, folder)
        return folder
    logger.info("writing a random %s %s checkpoint to %s", size, kind, folder)
    dtype = mx.bfloat16  # as released, also for the tiny one
    return write_checkpoint(folder, size, kind, seed, dtype, "0b6" if size != "1.7b" else "1b7")
