"""`python -m mlx_qwen3tts convert`: official Qwen3-TTS checkpoints -> MLX folders, float or 4/8-bit.

    python -m mlx_qwen3tts convert --hf-path Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --mlx-path tts-8bit -q
    python -m mlx_qwen3tts convert --hf-path SRC --mlx-path tts-mixed --quant-recipe mixed --check
    python -m mlx_qwen3tts convert --report tts-mixed

The output loads with `mlx_qwen3tts.load()`: weights in MLX layout (renamed, transposed,
codebook vectors precomputed), config.json with a `quantization` block when quantized, the
speech tokenizer in float32, the text tokenizer files, generation_config.json and a README.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from .weights import SIZE_NAMES, check_checkpoint_config, load_strict, parse_dtype, read_json, read_safetensors, resolve_checkpoint
from .weights import safetensors_format
from .quantize import BITS, DEFAULT_BITS, DEFAULT_GROUP_SIZE, GROUP_SIZES, RECIPES, quantize_model

logger = logging.getLogger(__name__)

# Unused by encode(): Mimi's output projections, its "initialized" flags, codebooks past the kept ones.
_ENCODER_CODEBOOK = re.compile(r"encoder\.quantizer\.(semantic|acoustic)_residual_vector_quantizer\.layers\.(\d+)\.")


def pick_recipe(quantize: bool, q_bits: int | None, quant_recipe: str | None) -> str | None:
    """The recipe to apply (None: no quantization), checking bits and recipe names."""
    if q_bits is not None and q_bits not in BITS:
        raise ValueError(f"unsupported --q-bits {q_bits}; choose one of: {', '.join(map(str, BITS))}")
    if quant_recipe is None:
        return f"{q_bits or DEFAULT_BITS}bit" if quantize else None
    if quant_recipe not in RECIPES:
        raise ValueError(f"unknown quantization recipe {quant_recipe!r}; choose one of: {', '.join(RECIPES)}")
    if q_bits is not None and quant_recipe != "mixed" and quant_recipe != f"{q_bits}bit":
        raise ValueError(f"--q-bits {q_bits} contradicts --quant-recipe {quant_recipe}; give one of them")
    return quant_recipe


def read_source_config(folder: Path) -> dict:
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a Qwen3-TTS checkpoint: it has no config.json")
    raw = read_json(folder / "config.json")
    check_checkpoint_config(raw, folder)
    return raw


def convert(hf_path: str | Path, mlx_path: str | Path, quantize: bool = False, q_bits: int | None = None,
            q_group_size: int = DEFAULT_GROUP_SIZE, quant_recipe: str | None = None,
            dtype: str | mx.Dtype | None = None, force: bool = False) -> Path:
    """Converts a Qwen3-TTS checkpoint into an MLX folder; returns the folder.

    Args:
        hf_path: the official checkpoint: a local folder or a Hugging Face repo id.
        mlx_path: the folder to write. It must not exist unless `force`.
        quantize: quantize with the `{q_bits}bit` recipe (unless `quant_recipe` says otherwise).
        q_bits: 4 or 8 (default 8).
        q_group_size: 32, 64 or 128 values share one scale and bias.
        quant_recipe: "8bit", "4bit" or "mixed" (see `mlx_qwen3tts.quantize`); implies `quantize`.
        dtype: cast the main model's float weights ("float16", "bfloat16", "float32"); the
            codec always stays float32. Default: as stored.
        force: replace an existing `mlx_path`.
    """
    recipe = pick_recipe(quantize, q_bits, quant_recipe)
    if recipe and q_group_size not in GROUP_SIZES:
        raise ValueError(f"unsupported --q-group-size {q_group_size}; choose one of: "
                         f"{', '.join(map(str, GROUP_SIZES))}")
    dtype = parse_dtype(dtype)
    source = resolve_checkpoint(hf_path)
    raw = read_source_config(source)
    target = Path(mlx_path).expanduser().absolute()
    _check_target(target, source, force)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's private 0700 is not what a model folder wants
    try:
        block = _write_model(source, tmp, raw, recipe, q_group_size, dtype)
        _write_speech_tokenizer(source / "speech_tokenizer", tmp / "speech_tokenizer")
        _copy_side_files(source, tmp)
        config = {k: v for k, v in raw.items() if k not in ("quantization", "quantization_config")}
        if block:
            config["quantization"] = block
        local = Path(str(hf_path)).expanduser()
        config["mlx_conversion"] = {"source": str(local.absolute()) if local.is_dir() else str(hf_path),
                                    "recipe": recipe, "dtype": None if dtype is None else str(dtype).split(".")[-1]}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        (tmp / "README.md").write_text(_model_card(target.name, config), "utf-8")
        _replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_target(target: Path, source: Path, force: bool) -> None:
    real, source = target.resolve(), source.resolve()
    if real == source or real in source.parents:
        raise ValueError(f"--mlx-path {target} would overwrite the source checkpoint; choose another folder")
    if target.exists():
        if not force:
            raise FileExistsError(f"{target} already exists; pass --force to replace it")
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a folder; remove it first")


def _replace(tmp: Path, target: Path) -> None:
    """Moves the finished folder into place; an old one is swapped out first and removed last."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_model(source: Path, out: Path, raw: dict, recipe: str | None, group_size: int,
                 dtype: mx.Dtype | None) -> dict | None:
    """Sanitizes, casts and quantizes the main weights; returns the quantization block."""
    from .config import ModelConfig
    from .models.qwen3_tts import Model

    model = Model(ModelConfig.from_dict(raw))
    weights = model.sanitize(read_safetensors(source), safetensors_format(source))
    if any(k.endswith(".scales") for k in weights):
        raise ValueError(f"{source} is already quantized; convert from the float (official) checkpoint")
    load_strict(model, weights, source)
    if dtype is not None:
        model.set_dtype(dtype)
    block = quantize_model(model, recipe, group_size) if recipe else None
    if block:
        logger.info("quantized %d layers with the %s recipe (group size %d)", len(block) - 2, recipe, group_size)
    mx.save_safetensors(str(out / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "mlx"})
    return block


def _write_speech_tokenizer(src: Path, dst: Path) -> None:
    """The codec in float32: the decoder in MLX layout, the encoder (if any) pruned to what
    encoding reads. Both are loaded once here, strictly, so a broken source fails now."""
    from .codec import SpeechDecoder, SpeechTokenizerConfig
    from .codec.encoder import EncoderConfig, SpeechEncoder

    for name in ("config.json", "model.safetensors"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"speech_tokenizer/{name} is missing from {src.parent}; "
                                    "download the whole checkpoint again")
    dst.mkdir()
    for file in src.iterdir():
        if file.is_file() and not file.name.startswith(".") and file.suffix != ".safetensors":
            shutil.copy(file, dst / file.name)
    raw = read_json(src / "config.json")
    weights = mx.load(str(src / "model.safetensors"))
    decoder = SpeechDecoder(SpeechTokenizerConfig.from_dict(raw).decoder)
    out = decoder.sanitize(weights)
    load_strict(decoder, out, src)
    # The encoder stays in the official layout so older versions can read the folder too: their
    # SpeechDecoder.sanitize took every un-prefixed key, MLX-named encoder keys included, as its own.
    official = {k: v for k, v in weights.items() if k.startswith("encoder.")}
    if official:
        encoder = SpeechEncoder(EncoderConfig.from_speech_tokenizer(raw))
        kept = {}
        for key, value in official.items():
            m = _ENCODER_CODEBOOK.match(key)
            group = encoder.quantizer.get(m.group(1)) if m else None
            if key.endswith(".initialized") or ".output_proj." in key:
                continue
            if m and (group is None or int(m.group(2)) >= group.codebooks.shape[0]):
                continue
            kept[key] = value
        load_strict(encoder, encoder.sanitize(kept), src)
        out.update(kept)
    out = {k: v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v for k, v in out.items()}
    mx.save_safetensors(str(dst / "model.safetensors"), out, metadata={"format": "mlx"})


def _copy_side_files(source: Path, out: Path) -> None:
    """Text tokenizer, generation_config.json, processor configs: everything but the weights."""
    for file in source.iterdir():
        name = file.name
        if not file.is_file() or name.startswith(".") or name in ("config.json", "README.md"):
            continue
        if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
            continue
        shutil.copy(file, out / name)


def _model_card(name: str, config: dict) -> str:
    conv = config["mlx_conversion"]
    size = SIZE_NAMES.get(config.get("tts_model_size"), config.get("tts_model_size"))
    kind = config.get("tts_model_type")
    block = config.get("quantization")
    if block:
        bits = sorted({v["bits"] for v in block.values() if isinstance(v, dict)})
        weights = (f"quantized with the `{conv['recipe']}` recipe ({'/'.join(map(str, bits))}-bit, group size "
                   f"{block['group_size']}, {len(block) - 2} layers); norms, the speaker encoder and "
                   "layers whose width does not divide by the group size stay in float")
    else:
        weights = f"not quantized ({conv['dtype'] or 'dtype as in the source'})"
    call = {"custom_voice": 'speaker="vivian"', "voice_design": 'instruct="A calm, warm voice."',
            "base": 'voice=tts.clone_voice("ref.wav", "Transcript of ref.wav.")'}.get(kind, "")
    return (f"# {name}\n\nQwen3-TTS 12 Hz {size} ({kind}) in MLX format, converted with mlx-qwen3tts "
            f"from `{conv['source']}`.\n\n- Main weights: {weights}.\n- Speech tokenizer (codec): float32, "
            "never quantized.\n\n```python\nimport mlx_qwen3tts\n\n"
            f'tts = mlx_qwen3tts.load("{name}")\ntts.generate("Hello from MLX.", {call}).save("hello.wav")\n```\n')


def configure_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlx-qwen3tts convert", description="Convert a Qwen3-TTS checkpoint to MLX (optionally 4/8-bit), "
                                "or report a quantized folder's quality against its source.")
    p.add_argument("--hf-path", help="official checkpoint: a local folder or a Hugging Face repo id")
    p.add_argument("--mlx-path", default="mlx_model", help="folder to write (default: mlx_model)")
    p.add_argument("-q", "--quantize", action="store_true", help="quantize the talker (see --quant-recipe)")
    p.add_argument("--q-bits", type=int, help=f"bits per weight: {', '.join(map(str, BITS))} (default 8)")
    p.add_argument("--q-group-size", type=int, default=DEFAULT_GROUP_SIZE,
                   help=f"values per scale: {', '.join(map(str, GROUP_SIZES))} (default 64)")
    p.add_argument("--quant-recipe", help=f"which layers get which bits: {', '.join(RECIPES)}")
    p.add_argument("--dtype", help="cast the main model's float weights: float16, bfloat16 or float32 "
                   "(with --report/--check: run both models in this dtype)")
    p.add_argument("--force", action="store_true", help="replace an existing --mlx-path")
    p.add_argument("--report", metavar="OUT_FOLDER", nargs="+",
                   help="compare converted folders with their source (or --hf-path) and print a table")
    p.add_argument("--check", action="store_true", help="after converting, print the same report")
    return p


def main(argv: list[str] | None = None) -> int:
    args = configure_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.report is None and args.hf_path is None:
        configure_parser().error("give --hf-path (to convert) or --report OUT_FOLDER")
    try:
        folders = [Path(f) for f in args.report or []]
        if not folders:
            folders = [convert(args.hf_path, args.mlx_path, args.quantize, args.q_bits, args.q_group_size,
                               args.quant_recipe, args.dtype, args.force)]
            print(f"wrote {folders[0]}")
        if args.report or args.check:
            from .quality import format_report, quality_report

            print(format_report(quality_report(folders, args.hf_path, dtype=args.dtype)))
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return 0


if __name__ == "__main__":  # `python -m mlx_qwen3tts.convert_checkpoint`: the package's entry starts every command
    import runpy

    runpy.run_module("mlx_qwen3tts", run_name="__main__")
