"""Tiny random checkpoints written by the official classes (runs in the official implementation's venv).

Each builder writes into the folder it is given; the test process decides the names, caches them
and renames a finished folder into place (tests/reference.py).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from layout import (FEATURE_EXTRACTOR, GENERATION_CONFIG, SPEAKER_ENCODER_KEYS, TALKER_SHAPES,
                    speaker_encoder_config, speech_tokenizer_config, talker_config)


def randomize_(module, seed: int) -> None:
    """Seeded, scale-aware values for every parameter (HF init leaves codebooks at zero)."""
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
    with torch.no_grad():
        for mod in decoder.modules():
            if type(mod).__name__.endswith("ResidualUnit"):
                mod.conv2.conv.weight.mul_(0.5)
                mod.conv2.conv.bias.mul_(0.5)
        last = decoder.decoder[-1].conv
        last.weight.mul_(0.15)
        last.bias.zero_()


def build_speech_tokenizer(out: Path, seed: int, decoder: dict) -> None:
    """A tiny random speech tokenizer folder (config.json, model.safetensors, preprocessor)."""
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    cfg = speech_tokenizer_config(**decoder)
    cfg.pop("model_type")
    config = Qwen3TTSTokenizerV2Config(**cfg)
    torch.manual_seed(seed)
    model = Qwen3TTSTokenizerV2Model(config).eval()
    randomize_(model, seed + 1000)
    tame_decoder_(model.decoder)
    model.save_pretrained(out, safe_serialization=True)
    (out / "preprocessor_config.json").write_text(json.dumps(FEATURE_EXTRACTOR, indent=2))
    (out / "generation_config.json").unlink(missing_ok=True)


def build_checkpoint(out: Path, variant: str, shape: str, size: str, seed: int, text_tokenizer: Path,
                     speech_tokenizer: Path) -> None:
    """A whole checkpoint folder of `variant` with the given tokenizer folders copied in."""
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    talker = talker_config(TALKER_SHAPES[shape], variant == "custom_voice")
    config = Qwen3TTSConfig(
        talker_config=talker, speaker_encoder_config=speaker_encoder_config(talker["hidden_size"]),
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
                                      if k in SPEAKER_ENCODER_KEYS}
    (out / "config.json").write_text(json.dumps(data, indent=2))
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
    for fn in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(Path(text_tokenizer) / fn, out / fn)
    shutil.copytree(speech_tokenizer, out / "speech_tokenizer", ignore=shutil.ignore_patterns(".params.json"))


def build_speaker_encoder(out: Path, config: dict, seed: int) -> None:
    """A random official speaker encoder, saved as a Base checkpoint folder holds it."""
    from safetensors.torch import save_file

    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSSpeakerEncoder

    torch.manual_seed(0)
    module = Qwen3TTSSpeakerEncoder(Qwen3TTSSpeakerEncoderConfig(**config)).eval()
    randomize_(module, seed)
    tensors = {f"speaker_encoder.{k}": v.contiguous() for k, v in module.state_dict().items()}
    tensors["talker.codec_head.weight"] = torch.zeros(4, 4)
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps({"speaker_encoder_config": config}))
