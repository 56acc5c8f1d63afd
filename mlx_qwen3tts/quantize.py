"""Quantization recipes (which layers get how many bits) and re-quantizing a model at load time.

The converter records every quantized layer in config.json:

    "quantization": {"group_size": 64, "bits": 4,
                     "talker.model.layers.0.mlp.up_proj": {"group_size": 64, "bits": 8}, ...}

and `load()` rebuilds exactly the layers whose weights come with a `{path}.scales` tensor.

Recipes: `8bit` puts every talker and code-predictor linear layer at 8 bits; `4bit` puts the
talker's own linear layers at 4 bits (the code predictor's stay float); `mixed` puts the talker
at 4 bits but its first and last layers, the code predictor and the heads at 8. All embedding
tables get 8 bits. Never quantized: norms, the speaker encoder, the codec, and any layer whose
input width does not divide by the group size.
"""

from __future__ import annotations

import logging
import re

import mlx.core as mx
import mlx.nn as nn

logger = logging.getLogger(__name__)

RECIPES = ("8bit", "4bit", "mixed")
BITS = (4, 8)
GROUP_SIZES = (32, 64, 128)
DEFAULT_BITS = 8
DEFAULT_GROUP_SIZE = 64

# Embedding tables are quantized at 8 bits in every recipe. The text embedding alone is a third
# of the 0.6B model (151936 x 2048). On a real-size random 0.6B, 8-bit tables moved talker KL
# from 0.000140 to 0.000150 nats and code-predictor KL from 0.00023 to 0.00025 on top of the
# 8bit recipe, while the weights shrank from 1287 to 963 MB; 4-bit tables on top of `mixed`
# cost 20% more code-predictor KL (0.017 -> 0.020), so embeddings never go below 8 bits.
EMBEDDING_BITS = 8

_TALKER_LAYER = re.compile(r"talker\.model\.layers\.(\d+)\.")


def recipe_bits(recipe: str, path: str, module: nn.Module, num_layers: int) -> int | None:
    """Bits for the layer at `path` under `recipe`, or None to keep it in float.

    Args:
        recipe: one of `RECIPES`.
        path: the module path in `Model` (e.g. "talker.model.layers.3.mlp.up_proj").
        module: the module at `path`.
        num_layers: the talker's layer count (for `mixed`'s first and last layers).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown quantization recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    # Only the talker tree: the speaker encoder stays float (the codec is not in this model at all).
    if not path.startswith("talker."):
        return None
    if isinstance(module, nn.Embedding):
        return EMBEDDING_BITS
    if not isinstance(module, nn.Linear):
        return None
    in_predictor = path.startswith("talker.code_predictor.")
    if recipe == "8bit":
        return 8
    if recipe == "4bit":
        return None if in_predictor else 4
    # mixed: the small code predictor and every output head are the most sensitive parts.
    if in_predictor or path == "talker.codec_head":
        return 8
    m = _TALKER_LAYER.match(path)
    if m and int(m.group(1)) in (0, num_layers - 1):
        return 8
    return 4


def quantize_model(model: nn.Module, recipe: str, group_size: int) -> dict:
    """Quantizes `model` in place with `recipe`; returns config.json's `quantization` block.

    Layers whose input width does not divide by `group_size` stay in float.
    """
    if group_size not in GROUP_SIZES:
        raise ValueError(f"unsupported group size {group_size}; choose one of: {', '.join(map(str, GROUP_SIZES))}")
    num_layers = len(model.talker.model.layers)
    chosen: dict[str, dict] = {}

    def predicate(path: str, module: nn.Module) -> bool | dict:
        if not hasattr(module, "to_quantized"):
            return False
        bits = recipe_bits(recipe, path, module, num_layers)
        if bits is None:
            return False
        if module.weight.shape[-1] % group_size:
            logger.info("keeping %s in float: input width %d does not divide by group size %d",
                        path, module.weight.shape[-1], group_size)
            return False
        chosen[path] = {"group_size": group_size, "bits": bits}
        return dict(chosen[path])

    nn.quantize(model, class_predicate=predicate)
    if not chosen:
        raise ValueError(f"the {recipe} recipe found no layer whose input width divides by group size "
                         f"{group_size}; choose a smaller --q-group-size")
    default_bits = 4 if recipe in ("4bit", "mixed") else 8
    return {"group_size": group_size, "bits": default_bits, **dict(sorted(chosen.items()))}


def apply_quantization(model: nn.Module, block: dict | None, weights: dict[str, mx.array], where) -> None:
    """Turns into quantized layers exactly the paths of `model` that have `{path}.scales` in
    `weights`, with the per-path (else global) bits and group size of config.json's `block`."""
    paths = sorted(k[: -len(".scales")] for k in weights if k.endswith(".scales"))
    if block is None:
        if paths:
            raise ValueError(f"the weights in {where} are quantized ({len(paths)} layers) but its config.json "
                             "has no 'quantization' block; convert the checkpoint again")
        return
    if not paths:
        raise ValueError(f"config.json in {where} has a 'quantization' block but the weights are not "
                         "quantized; convert the checkpoint again")
    listed = {k for k, v in block.items() if isinstance(v, dict)}
    if stray := sorted(listed - set(paths)):
        raise ValueError(f"config.json in {where} lists quantized layers whose weights are not quantized "
                         f"({', '.join(stray[:3])}); the quantization block does not match the weights")
    modules = dict(model.named_modules())
    params: dict[str, dict] = {}
    for path in paths:
        entry = block.get(path, block)
        if entry is False or not hasattr(modules.get(path), "to_quantized"):
            raise ValueError(f"{where} has quantized weights for {path}, which the model cannot quantize "
                             "(or config.json says not to); the quantization block does not match the weights")
        if "bits" not in entry or "group_size" not in entry:
            raise ValueError(f"config.json in {where} gives no bits/group_size for {path}")
        params[path] = {"group_size": entry["group_size"], "bits": entry["bits"], "mode": entry.get("mode", "affine")}

    nn.quantize(model, class_predicate=lambda p, m: dict(params[p]) if p in params else False)
    modules = dict(model.named_modules())  # the quantized layers replaced the float ones
    for path in paths:
        module = modules[path]
        for leaf in ("weight", "scales", "biases"):
            have = weights.get(f"{path}.{leaf}")
            want = getattr(module, leaf, None)
            if have is not None and want is not None and have.shape != want.shape:
                p = params[path]
                raise ValueError(f"{path}.{leaf} in {where} has shape {tuple(have.shape)}, but "
                                 f"{p['bits']}-bit groups of {p['group_size']} give {tuple(want.shape)}; "
                                 "the quantization block in config.json does not match the weights")

