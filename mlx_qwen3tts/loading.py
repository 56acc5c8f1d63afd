"""`load()`: a checkpoint folder (or Hugging Face repo id) -> model, codec and tokenizer -> `TTS`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlx.core as mx

from . import lanes
from .blas import warn_if_slow
from .codec import load_speech_decoder
from .config import ModelConfig
from .models.qwen3_tts import Model
from .quantize import apply_quantization
from .sampling import SamplingConfig
from .tokenizer import TextTokenizer
from .tts import TTS
from .weights import CODEC_REPO, check_checkpoint_config, load_strict, parse_dtype, read_json, read_safetensors, resolve_checkpoint
from .weights import safetensors_format

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
MODEL_ENV = "MLX_QWEN3TTS_MODEL"


def default_model() -> str:
    """The model the commands load when none is named: $MLX_QWEN3TTS_MODEL, else `DEFAULT_MODEL`."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def load(path_or_repo: str | Path, dtype: str | mx.Dtype | None = "auto") -> TTS:
    """Loads a Qwen3-TTS checkpoint (folder or Hugging Face repo id) as a `TTS`.

    `dtype="auto"` runs float32 on the CPU (half-precision matmuls have no fast path there)
    and keeps the checkpoint's dtype on the GPU; None always keeps it; "float32", "bfloat16"
    or "float16" casts. The work runs on the library's own thread, where generation runs too.
    """
    return lanes.shared().call(lambda: _load(path_or_repo, dtype))


def _load(path_or_repo: str | Path, dtype: str | mx.Dtype | None) -> TTS:
    warn_if_slow()
    if isinstance(dtype, str) and dtype == "auto":
        dtype = mx.float32 if mx.default_device() == mx.cpu else None
    dtype = parse_dtype(dtype)
    folder = resolve_checkpoint(path_or_repo)
    raw = read_json(folder / "config.json")
    check_checkpoint_config(raw, folder)
    check_speech_tokenizer(folder)
    config = ModelConfig.from_dict(raw)
    model = Model(config)
    weights = model.sanitize(read_safetensors(folder), safetensors_format(folder))
    # Converted folders may be quantized: rebuild those layers before the strict load.
    apply_quantization(model, raw.get("quantization"), weights, folder)
    load_strict(model, weights, folder)
    if dtype is not None:
        model.set_dtype(dtype)
    elif mx.default_device() == mx.cpu and model.talker.codec_head.weight.dtype in (mx.bfloat16, mx.float16):
        logger.warning("half-precision weights run slowly on the CPU: load(..., dtype='auto') makes "
                       "each frame about 1.5x and the first audio about 3.5x faster")
    if "speaker_encoder" in model:
        # Small, and full of long sums over time that half precision would round away.
        model.speaker_encoder.set_dtype(mx.float32)
    mx.eval(model.parameters())
    gen_path = folder / "generation_config.json"
    sampling = SamplingConfig.from_dict(read_json(gen_path)) if gen_path.exists() else SamplingConfig()
    tokenizer = TextTokenizer.from_folder(folder)
    decoder = load_speech_decoder(folder / "speech_tokenizer")
    return TTS(model, tokenizer, sampling, path=folder, speech_decoder=decoder)


def check_speech_tokenizer(folder: Path) -> None:
    """Refuses, before the model loads, a folder without the codec's weights (mlx-audio's
    converter left `speech_tokenizer/model.safetensors` out for a few days in January 2026)."""
    codec = folder / "speech_tokenizer"
    how = f"download it from {CODEC_REPO}: huggingface-cli download {CODEC_REPO} --local-dir {codec}"
    if not codec.is_dir():
        raise FileNotFoundError(f"the speech_tokenizer/ folder is missing from {folder}; {how}")
    if not (codec / "model.safetensors").is_file():
        raise FileNotFoundError(f"{codec / 'model.safetensors'} is missing: this checkpoint has no codec "
                                f"(speech tokenizer) weights; {how}")
