"""Reading checkpoints: finding the folder, JSON configs, safetensors, strict loads, atomic writes.

The leaf of the package: it imports nothing of the package, and the models, the codec and the
loader build on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
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
CODEC_REPO = "Qwen/Qwen3-TTS-Tokenizer-12Hz"
SIZE_NAMES = {"0b6": "0.6B", "1b7": "1.7B"}


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
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0]  # the hub adds a paragraph below
        raise FileNotFoundError(f"cannot download {text!r}: no connection and no cached copy ({cause}); "
                                "connect once to download it, or pass a local checkpoint folder") from None
    except HfHubHTTPError as e:
        raise FileNotFoundError(f"cannot download {text!r} from Hugging Face: {e}") from None


def read_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing from {path.parent}")
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-download or re-convert the checkpoint") from None


def check_checkpoint_config(raw: dict, folder: Path) -> None:
    """Refuses a config.json that is not a Qwen3-TTS 12 Hz checkpoint's."""
    if raw.get("model_type") != "qwen3_tts" or "talker_config" not in raw:
        raise ValueError(f"{folder} is not a Qwen3-TTS checkpoint (config.json model_type is "
                         f"{raw.get('model_type')!r}, expected 'qwen3_tts')")
    if raw.get("tokenizer_type", "qwen3_tts_tokenizer_12hz") != "qwen3_tts_tokenizer_12hz":
        raise ValueError(f"{folder} uses the {raw.get('tokenizer_type')!r} codec; only the 12 Hz models are supported")


def safetensors_files(folder: Path, stem: str = "model") -> list[Path]:
    """`stem.safetensors`, or every shard listed in `stem.safetensors.index.json`."""
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    if single.exists():
        files = [single]
    elif index.exists():
        files = [folder / name for name in sorted(set(read_json(index)["weight_map"].values()))]
    else:
        raise FileNotFoundError(f"{single.name} (or a sharded {index.name}) is missing from {folder}")
    for file in files:
        if not file.exists():
            raise FileNotFoundError(f"weight shard {file.name} is missing from {folder}")
    return files


def safetensors_format(folder: Path, stem: str = "model") -> str | None:
    """The `format` the files' metadata name ("pt" from PyTorch, "mlx" from MLX converters), or
    None when they name none or disagree. Reads only the headers."""
    formats = set()
    for file in safetensors_files(folder, stem):
        with open(file, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            try:  # a damaged file has no format; read_safetensors says what is wrong with it
                header = json.loads(f.read(size)) if size <= file.stat().st_size else {}
            except (json.JSONDecodeError, UnicodeDecodeError):
                header = {}
        metadata = header.get("__metadata__") if isinstance(header, dict) else None
        formats.add(metadata.get("format") if isinstance(metadata, dict) else None)
    return formats.pop() if len(formats) == 1 else None


def read_safetensors(folder: Path, stem: str = "model") -> dict[str, mx.array]:
    """Reads `stem.safetensors`, or every shard listed in `stem.safetensors.index.json`."""
    weights: dict[str, mx.array] = {}
    for file in safetensors_files(folder, stem):
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
    model.load_weights([(k, mx.contiguous(v)) for k, v in weights.items()], strict=True)


def load_module(model: nn.Module, weights: dict[str, mx.array], where: Path,
                cast: Callable[[str, mx.array], mx.array] | None = None) -> nn.Module:
    """`model.sanitize(weights)`, an optional per-tensor `cast(key, value)`, a strict load, and
    the weights evaluated: the model ready for inference."""
    weights = model.sanitize(weights)
    if cast is not None:
        weights = {k: cast(k, v) for k, v in weights.items()}
    load_strict(model, weights, where)
    model.eval()
    mx.eval(model.parameters())
    return model


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} not found in {what} folder {path.parent}")
    return path


def parse_dtype(dtype: str | mx.Dtype | None) -> mx.Dtype | None:
    if dtype is None or isinstance(dtype, mx.Dtype):
        return dtype
    names = {"float32": mx.float32, "fp32": mx.float32, "float16": mx.float16, "fp16": mx.float16,
             "bfloat16": mx.bfloat16, "bf16": mx.bfloat16}
    if str(dtype).lower() not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
    return names[str(dtype).lower()]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write; it replaces `path` only if the block
    succeeds, so a failed or interrupted write leaves nothing behind. `suffix` is the temporary
    file's (default: `path`'s), for writers that pick the format by name."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(suffix=path.suffix if suffix is None else suffix, prefix=".partial-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
