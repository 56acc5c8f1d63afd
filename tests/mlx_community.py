"""mlx-community Qwen3-TTS folders, made from an official folder the way `mlx_audio.convert`
makes them (peers-2026-12.md §1.6), without mlx-audio:

- root `model.safetensors` with the official tensor names, `format: mlx` metadata, and a
  `model.safetensors.index.json`;
- speaker-encoder Conv1d weights as MLX's (out, kernel, in); everything cast to `dtype`;
- with `bits`: every Linear whose input width divides by `group_size` becomes `.weight`
  (uint32), `.scales`, `.biases`, keeping its `.bias`; embeddings, norms and the speaker
  encoder stay float; config.json gets `quantization` (and a copy as `quantization_config`),
  with no per-layer entries;
- `speech_tokenizer/` and the other side files copied unchanged; config.json keys sorted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx

# mlx-audio's model_quant_predicate skips paths with these names.
NEVER_QUANTIZED = ("codec_embedding", "text_embedding", "speech_tokenizer", "speaker_encoder")


def write_mlx_community(src: Path, dst: Path, *, dtype: mx.Dtype = mx.bfloat16, bits: int | None = None,
                        group_size: int = 64) -> Path:
    weights = {}
    for file in sorted(src.glob("*.safetensors")):  # the root files only, as mlx-audio reads them
        weights.update(mx.load(str(file)))
    out = {}
    for key, value in weights.items():
        if "position_ids" in key:
            continue
        if key.startswith("speaker_encoder.") and value.ndim == 3:
            value = value.transpose(0, 2, 1)  # PyTorch Conv1d (out, in, k) -> MLX (out, k, in)
        out[key] = value.astype(dtype) if mx.issubdtype(value.dtype, mx.floating) else value
    if bits is not None:
        for key in sorted(out):
            value = out[key]
            if not key.endswith(".weight") or value.ndim != 2 or any(n in key for n in NEVER_QUANTIZED):
                continue
            if value.shape[-1] % group_size:
                continue
            path = key[: -len(".weight")]
            out[key], out[f"{path}.scales"], out[f"{path}.biases"] = mx.quantize(value, group_size, bits)
    dst.mkdir(parents=True)
    mx.save_safetensors(str(dst / "model.safetensors"), out, metadata={"format": "mlx"})
    index = {"metadata": {"total_size": sum(v.nbytes for v in out.values())},
             "weight_map": {k: "model.safetensors" for k in sorted(out)}}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=4))
    for file in src.iterdir():
        if file.name.startswith("."):
            continue
        if file.is_dir():
            shutil.copytree(file, dst / file.name)
        elif file.name != "config.json" and not (file.name.startswith("model") and file.suffix == ".safetensors"):
            shutil.copy(file, dst / file.name)
    config = json.loads((src / "config.json").read_text())
    config["model_type"] = "qwen3_tts"
    config.pop("_name_or_path", None)
    if bits is not None:
        config["quantization"] = {"group_size": group_size, "bits": bits, "mode": "affine"}
        config["quantization_config"] = dict(config["quantization"])
    (dst / "config.json").write_text(json.dumps(dict(sorted(config.items())), indent=4))
    return dst
