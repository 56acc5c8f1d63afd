"""Token selection in the reference's order.

Talker (codebook 0): repetition penalty over the distinct codes generated so far, EOS banned
for the first tokens, the non-audio rows suppressed, then temperature, top-k, top-p and a
categorical draw. The code predictor uses the draw alone (temperature, top-k, top-p).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_lm.sample_utils import apply_top_k, apply_top_p

from .checks import check_float, check_int
from .config import known_fields

_TEMPERATURE = ("a number from 0 up (0 is greedy)", "pass 0 for greedy decoding, or about 0.9 to sample")
_TOP_K = ("an integer of 0 (off) or more", "0 keeps every token; about 50 is usual")
_TOP_P = ("a number above 0 and at most 1", "1 turns nucleus sampling off")


def check_sampling(name: str, value: Any) -> Any:
    """One sampling override, checked by the rule of its name (the code predictor's `subtalker_*`
    knobs follow the talker's)."""
    base = name.removeprefix("subtalker_")
    if base == "temperature":
        return check_float(name, value, 0.0, None, *_TEMPERATURE)
    if base == "top_k":
        return check_int(name, value, 0, None, *_TOP_K)
    if base == "top_p":
        return check_float(name, value, 0.0, 1.0, *_TOP_P, low_open=True)
    if name == "repetition_penalty":
        return check_float(name, value, 0.0, None, "a number above 0 (1 is off)",
                           "values above 1 discourage repeated codes; about 1.05 is usual", low_open=True)
    if name == "max_new_tokens":
        return check_int(name, value, 1, None, "an integer of 1 or more (codec frames, 12.5 per second)",
                         "leave it out for the checkpoint's limit")
    raise TypeError(f"unknown sampling option {name!r}; the options are: {', '.join(SAMPLING_OPTIONS)}")


SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "repetition_penalty", "subtalker_temperature",
                    "subtalker_top_k", "subtalker_top_p", "max_new_tokens")


@dataclass(frozen=True)
class Sampler:
    """Greedy when `do_sample` is false, else temperature -> top-k -> top-p -> categorical."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0

    def __call__(self, logits: mx.array, key: mx.array | None = None) -> mx.array:
        """(B, V) float logits -> (B,) int32 tokens."""
        if not self.do_sample:
            return mx.argmax(logits, axis=-1).astype(mx.int32)
        return mx.random.categorical(self.shape(logits), key=key).astype(mx.int32)

    def shape(self, logits: mx.array) -> mx.array:
        """Temperature, top-k and top-p on (B, V) logits, each row on its own."""
        logits = logits.astype(mx.float32) * (1.0 / self.temperature)
        if 0 < self.top_k < logits.shape[-1]:
            logits = apply_top_k(logits, int(self.top_k))
        if 0 < self.top_p < 1.0:
            logits = apply_top_p(logits - mx.logsumexp(logits, axis=-1, keepdims=True), self.top_p)
        return logits


@dataclass
class TalkerLogitsProcessor:
    """Shapes codebook-0 logits before sampling; keeps the set of codes seen so far on device."""

    vocab_size: int
    eos_id: int
    audio_vocab: int  # ids below this are audio codes; the rest, but EOS, are never drawn
    repetition_penalty: float = 1.05
    min_new_tokens: int = 2

    def __post_init__(self):
        ids = mx.arange(self.vocab_size)
        allowed = (ids < self.audio_vocab) | (ids == self.eos_id)
        self._suppress = mx.where(allowed, 0.0, -mx.inf)
        self._no_eos = mx.where(ids == self.eos_id, -mx.inf, 0.0)
        self.reset()

    def reset(self) -> None:
        self._seen = mx.zeros((self.vocab_size,), dtype=mx.bool_)
        self._count = 0

    def __call__(self, logits: mx.array) -> mx.array:
        """(B, V) logits of the next token -> processed float32 logits."""
        logits = logits.astype(mx.float32)
        if self.repetition_penalty != 1.0 and self._count:
            p = self.repetition_penalty
            logits = mx.where(self._seen, mx.where(logits < 0, logits * p, logits / p), logits)
        if self._count < self.min_new_tokens:
            logits = logits + self._no_eos
        return logits + self._suppress

    def update(self, token: mx.array) -> None:
        """Records a drawn token (an mx array: no host sync needed)."""
        self._seen = self._seen | (mx.arange(self.vocab_size) == token.reshape(-1, 1)).any(axis=0)
        self._count += 1


@dataclass
class SamplingConfig:
    """Sampling knobs of a run; unset values fall back to generation_config.json, then to these."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.05
    subtalker_dosample: bool = True
    subtalker_temperature: float = 0.9
    subtalker_top_k: int = 50
    subtalker_top_p: float = 1.0
    max_new_tokens: int = 2048

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        return cls(**known_fields(cls, data))

    def resolve(self, **overrides: Any) -> SamplingConfig:
        """A copy with every non-None override applied; temperature 0 means greedy. A bad value
        raises `OptionError` (a ValueError; a TypeError too for a wrong type) naming it."""
        overrides = {k: check_sampling(k, v) for k, v in overrides.items() if v is not None}
        values = dataclasses.asdict(self)
        values.update(overrides)
        out = SamplingConfig(**values)
        if overrides.get("temperature") is not None:
            out.do_sample = overrides["temperature"] > 0
        if overrides.get("subtalker_temperature") is not None:
            out.subtalker_dosample = overrides["subtalker_temperature"] > 0
        return out
