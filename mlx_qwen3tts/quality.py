"""How far a quantized checkpoint drifts from its float source, on fixed prompts.

The source model speaks each prompt greedily (codebook 0 limited to audio codes, so a random
model cannot stop early); both models are then teacher-forced through those same frames and
compared position by position: talker KL(source || quantized), top-1 and top-5 agreement, and
the code predictor's top-1 agreement on codebooks 1..15.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx_lm.models.cache import KVCache

from .sampling import Sampler

logger = logging.getLogger(__name__)

PROMPTS = (
    "Hello there, this is a short test of the speech model.",
    "The quick brown fox jumps over the lazy dog, and then it runs away.",
    "On May 5th, 2024, the temperature reached 31.5 degrees at noon.",
)
FRAMES = 24
COLUMNS = [  # (key, header, format)
    ("name", "checkpoint", "{}"),
    ("size_mb", "size MB", "{:.0f}"),
    ("weights_mb", "weights MB", "{:.0f}"),
    ("load_s", "load s", "{:.2f}"),
    ("kl", "talker KL", "{:.5f}"),
    ("top1", "top-1", "{:.3f}"),
    ("top5", "top-5", "{:.3f}"),
    ("cp_top1", "CP top-1", "{:.3f}"),
    ("cp_kl", "CP KL", "{:.5f}"),
]


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _request_kwargs(tts) -> dict:
    """One fixed voice per model kind, the same for both models."""
    if tts.kind == "custom_voice":
        return {"speaker": tts.speakers[0], "language": "auto"}
    if tts.kind == "voice_design":
        return {"instruct": "A calm, clear adult voice.", "language": "auto"}
    from .voice import Voice

    x_vector = np.random.default_rng(0).standard_normal(tts.config.talker.hidden_size).astype(np.float32)
    return {"voice": Voice(x_vector, model_kind="base", model_size=tts.config.tts_model_size), "language": "auto"}


def greedy_frames(tts, prompt, frames: int) -> np.ndarray:
    """The model's greedy frames (frames, 16), codebook 0 drawn among audio codes only."""
    talker = tts.model.talker
    n_audio = tts.config.talker.codebook_size
    greedy = Sampler(do_sample=False)
    cache = [KVCache() for _ in talker.model.layers]
    logits, hidden = talker(prompt.prefill, cache)
    logits, hidden = logits[:, -1], hidden[:, -1:]
    out = []
    for k in range(frames):
        cp_cache = [KVCache() for _ in talker.code_predictor.model.layers]
        frame = talker.predict_frame(hidden, greedy(logits[:, :n_audio]), cp_cache, greedy, None)  # (1, 16)
        out.append(np.asarray(frame[0]))
        if k + 1 < frames:
            logits, hidden = talker.feed(frame, prompt.text_at(k), cache)
    return np.stack(out)


def teacher_forced(tts, prompt, codes: np.ndarray) -> tuple[mx.array, mx.array]:
    """Float32 log-probs of the talker (F, vocab) and of the code predictor (F, 15, vocab) on `codes`."""
    talker = tts.model.talker
    c = mx.array(codes)
    feeds = talker.embed_frame(c[:-1]) + mx.stack([prompt.text_at(k) for k in range(len(codes) - 1)])
    seq = mx.concatenate([prompt.prefill, feeds[None].astype(prompt.prefill.dtype)], axis=1)
    logits, hidden = talker(seq)
    start = prompt.prefill.shape[1] - 1
    logits, hidden = logits[0, start:], hidden[0, start:]  # (F, ...) one per frame
    return _log_softmax(logits), _log_softmax(talker.forced_frame_logits(hidden, c))


def _log_softmax(x: mx.array) -> mx.array:
    x = x.astype(mx.float32)
    return x - mx.logsumexp(x, axis=-1, keepdims=True)


def compare(ref: mx.array, test: mx.array) -> dict[str, float]:
    """KL(ref || test), top-1 agreement and top-5 overlap (shared top-5 entries / 5), per position."""
    kl = mx.sum(mx.exp(ref) * (ref - test), axis=-1)
    top1 = mx.argmax(ref, axis=-1) == mx.argmax(test, axis=-1)
    k = 5
    ref5 = np.asarray(mx.argpartition(-ref, k, axis=-1)[..., :k])
    test5 = np.asarray(mx.argpartition(-test, k, axis=-1)[..., :k])
    overlap = [len(set(a) & set(b)) / k for a, b in zip(ref5.reshape(-1, k), test5.reshape(-1, k))]
    return {"kl": float(mx.mean(kl)), "top1": float(mx.mean(top1)), "top5": float(np.mean(overlap))}


def _mean(results: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in results]))


def _timed_load(folder, dtype):
    from .loading import load

    start = time.perf_counter()
    tts = load(folder, dtype=dtype)
    return tts, time.perf_counter() - start


def _source_of(folders: list[Path]) -> str:
    from .weights import read_json

    sources = {(read_json(f / "config.json").get("mlx_conversion") or {}).get("source") for f in folders}
    if None in sources:
        raise ValueError("a converted folder does not record its source checkpoint; pass --hf-path")
    if len(sources) > 1:
        raise ValueError(f"the folders come from different sources ({', '.join(sorted(sources))}); "
                         "report them one source at a time or pass --hf-path")
    return sources.pop()


def quality_report(quantized: str | Path | list, source: str | Path | None = None, prompts=PROMPTS,
                   frames: int = FRAMES, dtype: str | None = None) -> list[dict]:
    """Compares converted folders with `source` (default: the one they were converted from).

    Both sides run in `dtype` if given (float32 isolates the quantization error from bfloat16
    rounding, and is the fast path on CPUs), else as stored.

    Returns:
        One dict per folder with the size, load time and mean agreement figures (see
        `COLUMNS`); each also holds the source's size and load time under "source".
    """
    from .weights import read_json, resolve_checkpoint

    folders = [Path(f) for f in (quantized if isinstance(quantized, (list, tuple)) else [quantized])]
    if frames < 2:
        raise ValueError("the report needs at least 2 frames per prompt")
    source_dir = resolve_checkpoint(source or _source_of(folders))
    ref, ref_load = _timed_load(source_dir, dtype)
    kwargs = _request_kwargs(ref)
    # The source's greedy frames and its log-probs on them, computed once for every folder.
    runs = []
    for text in prompts:
        prompt = ref.prepare(text, **kwargs).prompt
        codes = greedy_frames(ref, prompt, frames)
        a_talker, a_cp = teacher_forced(ref, prompt, codes)
        mx.eval(a_talker, a_cp)
        runs.append((text, codes, a_talker, a_cp))
    source_row = {"name": f"{source_dir.name} (source)", "size_mb": folder_mb(source_dir),
                  "weights_mb": sum(f.stat().st_size for f in source_dir.glob("model*.safetensors")) / 1e6,
                  "load_s": ref_load}
    del ref
    rows = []
    for folder in folders:
        test, test_load = _timed_load(folder, dtype)
        talker, cp = [], []
        for text, codes, a_talker, a_cp in runs:
            b_talker, b_cp = teacher_forced(test, test.prepare(text, **kwargs).prompt, codes)
            talker.append(compare(a_talker, b_talker))
            cp.append(compare(a_cp, b_cp))
            logger.info("%s, %r: talker %s, code predictor %s", folder.name, text[:20], talker[-1], cp[-1])
        recipe = (read_json(folder / "config.json").get("mlx_conversion") or {}).get("recipe") or "float"
        rows.append({
            "name": f"{folder.name} ({recipe})", "size_mb": folder_mb(folder),
            "weights_mb": (folder / "model.safetensors").stat().st_size / 1e6, "load_s": test_load,
            "kl": _mean(talker, "kl"), "top1": _mean(talker, "top1"), "top5": _mean(talker, "top5"),
            "cp_top1": _mean(cp, "top1"), "cp_kl": _mean(cp, "kl"), "frames": frames * len(prompts),
            "source": source_row,
        })
        del test
    return rows


def format_report(results: list[dict]) -> str:
    """A plain-text table: the source once, then one row per quantized folder."""
    rows = [results[0]["source"], *results]
    cells = [[h for _, h, _ in COLUMNS]]
    cells += [[fmt.format(r[k]) if k in r else "-" for k, _, fmt in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    frames = results[0]["frames"]
    return "\n".join(lines) + f"\n({frames} teacher-forced frames per checkpoint; KL is nats per frame)"
