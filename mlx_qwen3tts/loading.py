"""Finding a checkpoint (local folder or Hugging Face repo) and reading its weights strictly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

logger = logging.getLogger(__name__)

# What a model needs from a repo: no optimizer states, no ONNX exports, no sample audio.
ALLOW_PATTERNS = [
    "*.json", "*.safetensors", "merges.txt", "vocab.json", "*.md",
    "speech_tokenizer/*.json", "speech_tokenizer/*.safetensors",
]


def resolve_checkpoint(path_or_repo: str | Path) -> Path:
    """A local folder as it is, or a repo id downloaded (only the needed files) to the HF cache."""
    path = Path(path_or_repo).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_repo)
    if path.exists():
        raise NotADirectoryError(f"{text} is a file; pass the checkpoint folder that holds config.json")
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"no checkpoint folder at {text!r} (and it is not a Hugging Face repo id "
                                "such as 'Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, allow_patterns=ALLOW_PATTERNS))
    except LocalEntryNotFoundError as e:
        raise FileNotFoundError(f"cannot download {text!r}: no connection and no cached copy ({e})") from None
    except HfHubHTTPError as e:
        raise FileNotFoundError(f"cannot download {text!r} from Hugging Face: {e}") from None


def read_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing from {path.parent}")
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-download or re-convert the checkpoint") from None


def read_safetensors(folder: Path, stem: str = "model") -> dict[str, mx.array]:
    """Reads `stem.safetensors`, or every shard listed in `stem.safetensors.index.json`."""
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    if single.exists():
        files = [single]
    elif index.exists():
        files = [folder / name for name in sorted(set(read_json(index)["weight_map"].values()))]
    else:
        raise FileNotFoundError(f"{single.name} (or a sharded {index.name}) is missing from {folder}")
    weights: dict[str, mx.array] = {}
    for file in files:
        if not file.exists():
            raise FileNotFoundError(f"weight shard {file.name} is missing from {folder}")
        try:
            weights.update(mx.load(str(file)))
        except Exception as e:  # mx.load reports corrupt files as bare runtime errors
            raise ValueError(f"cannot read {file}: {e}. The file is damaged or incomplete; "
                             "download or convert the checkpoint again") from None
    return weights


def load_strict(model: nn.Module, weights: dict[str, mx.array], where: Path) -> None:
    """Loads every weight into `model`, naming what is missing, unexpected or misshapen."""
    expected = dict(tree_flatten(model.parameters()))
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [f"{k} {tuple(weights[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if k in weights and weights[k].shape != v.shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    if problems:
        raise ValueError(f"weights in {where} do not fit the model ({'; '.join(problems)})")
    # Row-major copies of transposed views: BLAS kernels round differently per operand layout,
    # so one checkpoint stored in two layouts would not give bit-identical audio otherwise.
    # Every loader (talker, codec decoder and encoder, speaker encoder) comes through here.
    model.load_weights([(k, mx.contiguous(v)) for k, v in weights.items()], strict=True)


def parse_dtype(dtype: str | mx.Dtype | None) -> mx.Dtype | None:
    if dtype is None or isinstance(dtype, mx.Dtype):
        return dtype
    names = {"float32": mx.float32, "fp32": mx.float32, "float16": mx.float16, "fp16": mx.float16,
             "bfloat16": mx.bfloat16, "bf16": mx.bfloat16}
    if str(dtype).lower() not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
    return names[str(dtype).lower()]


def load(path_or_repo: str | Path, dtype: str | mx.Dtype | None = None):
    """Loads a Qwen3-TTS checkpoint (folder or Hugging Face repo id) as a `TTS`.

    Weights keep the checkpoint's dtype unless `dtype` ("float32", "bfloat16", ...) is given.
    """
    from .blas import warn_if_slow
    from .config import ModelConfig, SamplingConfig
    from .models.qwen3_tts import Model
    from .quantize import apply_quantization
    from .tokenizer import TextTokenizer
    from .tts import TTS

    warn_if_slow()
    dtype = parse_dtype(dtype)
    folder = resolve_checkpoint(path_or_repo)
    raw = read_json(folder / "config.json")
    if raw.get("model_type") != "qwen3_tts" or "talker_config" not in raw:
        raise ValueError(f"{folder} is not a Qwen3-TTS checkpoint (config.json model_type is "
                         f"{raw.get('model_type')!r}, expected 'qwen3_tts')")
    config = ModelConfig.from_dict(raw)
    if config.tokenizer_type != "qwen3_tts_tokenizer_12hz":
        raise ValueError(f"{folder} uses the {config.tokenizer_type!r} codec; only the 12 Hz models are supported")
    model = Model(config)
    weights = model.sanitize(read_safetensors(folder))
    # Converted folders may be quantized: rebuild those layers before the strict load.
    apply_quantization(model, raw.get("quantization"), weights, folder)
    load_strict(model, weights, folder)
    if dtype is not None:
        model.set_dtype(dtype)
    elif mx.default_device() == mx.cpu and model.talker.codec_head.weight.dtype in (mx.bfloat16, mx.float16):
        logger.warning("half-precision weights run slowly on the CPU: load(..., dtype='float32') makes "
                       "each frame about 1.5x and the first audio about 3.5x faster")
    mx.eval(model.parameters())
    gen_path = folder / "generation_config.json"
    sampling = SamplingConfig.from_dict(read_json(gen_path)) if gen_path.exists() else SamplingConfig()
    tokenizer = TextTokenizer.from_folder(folder)
    if not (folder / "speech_tokenizer").is_dir():
        raise FileNotFoundError(f"the speech_tokenizer/ folder is missing from {folder}; download the "
                                "whole checkpoint again")
    from .codec import load_speech_decoder

    decoder = load_speech_decoder(folder / "speech_tokenizer")
    return TTS(model, tokenizer, sampling, path=folder, speech_decoder=decoder)
