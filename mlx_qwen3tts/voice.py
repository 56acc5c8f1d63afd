"""`Voice`: a cloned voice (x-vector and, for in-context cloning, reference codes) and its file."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE
from .audio_io import MAX_SECONDS, check_duration, load_audio
from .prompt import tokenize
from .weights import SIZE_NAMES, atomic_write

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Voice:
    """A voice cloned from reference audio, reusable across requests and sessions."""

    x_vector: np.ndarray  # (hidden,) speaker embedding
    ref_codes: np.ndarray | None = None  # (frames, 16) int32; None for x-vector-only voices
    ref_text: str | None = None
    ref_text_ids: tuple[int, ...] | None = None  # the transcript's tokens, as the prompt uses them
    model_kind: str = "base"
    model_size: str = "0b6"
    # Prompt pieces that depend only on this voice, per model (keyed by the talker's token):
    # computed once, never saved.
    prompt_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def in_context(self) -> bool:
        return self.ref_codes is not None

    def save(self, path: str | os.PathLike) -> Path:
        """Writes one small safetensors file (atomically)."""
        path = Path(path)
        tensors = {"x_vector": mx.array(np.asarray(self.x_vector, np.float32))}
        if self.ref_codes is not None:
            tensors["ref_codes"] = mx.array(np.asarray(self.ref_codes, np.int32))
        if self.ref_text_ids is not None:
            tensors["ref_text_ids"] = mx.array(np.asarray(self.ref_text_ids, np.int32))
        meta = {"format": "mlx-qwen3tts-voice", "format_version": str(FORMAT_VERSION),
                "model_kind": self.model_kind, "model_size": self.model_size,
                "ref_text": json.dumps(self.ref_text)}
        with atomic_write(path, suffix=".safetensors") as tmp:  # the writer adds it otherwise
            mx.save_safetensors(str(tmp), tensors, metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Voice:
        """Reads a voice file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"voice file {path} does not exist")
        try:
            tensors, meta = mx.load(str(path), format="safetensors", return_metadata=True)
        except Exception:
            raise ValueError(f"{path} is not a voice file (cannot read it as safetensors)") from None
        if meta.get("format") != "mlx-qwen3tts-voice" or "x_vector" not in tensors:
            raise ValueError(f"{path} is not an mlx-qwen3tts voice file")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{path} was written by a newer mlx-qwen3tts (voice format "
                             f"{meta['format_version']}); upgrade to read it")
        codes = tensors.get("ref_codes")
        ids = tensors.get("ref_text_ids")
        return cls(np.asarray(tensors["x_vector"]), None if codes is None else np.asarray(codes),
                   json.loads(meta.get("ref_text", "null")),
                   None if ids is None else tuple(np.asarray(ids).tolist()),
                   meta.get("model_kind", "base"), meta.get("model_size", "0b6"))

    def check_model(self, size: str, hidden: int) -> None:
        """Refuses a voice made for another model size (its x-vector has another width)."""
        if self.x_vector.shape != (hidden,) or size != self.model_size:
            made, this = SIZE_NAMES.get(self.model_size, self.model_size), SIZE_NAMES.get(size, size)
            raise ValueError(f"this voice was made for a {made} model and cannot be used with this "
                             f"{this} model; clone it again with this model")


def clone(config, tokenizer, speaker_encoder, speech_encoder, ref_audio, ref_text: str | None = None, *,
          sample_rate: int | None = None, x_vector_only: bool = False) -> Voice:
    """Builds a `Voice` from reference audio: the x-vector from `speaker_encoder` and, for
    in-context cloning, the reference codes from `speech_encoder()` (called only then, as
    the codec encoder is loaded on first use)."""
    kind = config.tts_model_type
    if kind != "base":
        raise ValueError(f"voice cloning needs a Base model; this is a {kind} model "
                         "(use speaker= or instruct= instead)")
    if not x_vector_only and not (ref_text and ref_text.strip()):
        raise ValueError("in-context cloning needs ref_text, the transcript of the reference audio; "
                         "or pass x_vector_only=True to clone from the voice timbre alone")
    wav = load_audio(ref_audio, sample_rate)
    if len(wav) > MAX_SECONDS * SAMPLE_RATE:
        logger.warning("reference audio is %.1f s long; using its first %d s", len(wav) / SAMPLE_RATE, MAX_SECONDS)
        wav = wav[: int(MAX_SECONDS * SAMPLE_RATE)]
    check_duration(wav)
    x_vector = np.asarray(speaker_encoder.x_vector(wav).astype(mx.float32))
    if x_vector_only:
        return Voice(x_vector, model_kind=kind, model_size=config.tts_model_size)
    codes = speech_encoder().encode(mx.array(wav)[None])[0]
    ids = tokenize(tokenizer, "", ref_text=ref_text).ref_text
    return Voice(x_vector, np.asarray(codes, np.int32), ref_text, ids, kind, config.tts_model_size)
