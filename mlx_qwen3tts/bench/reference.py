"""The official PyTorch implementation (`qwen-tts`) timed on the benchmark's checkpoint.

The official loader needs the talker's MRoPE settings in `config.json` and a speech tokenizer
in its own layout. A folder made by `--make-checkpoint` has neither (its codec is stored in
MLX layout), so the reference runs on an *official view* of it: the same talker weights and
tokenizer files (linked), the config completed, and a codec of the same shapes written by
the official classes with random weights. Decode cost depends on shapes only, so the
figures compare like with like. The reference runs in a process of its own, with PyTorch's
own BLAS (`child_env`); this file is also that child (`python -m ... --child ARGS`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

from ..audio import SAMPLE_RATE, SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

MARK = "REFERENCE_BENCH_JSON "

LINKED = ("model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json", "generation_config.json")
_FEATURE_EXTRACTOR = {"feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1,
                      "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
                      "sampling_rate": 24000, "chunk_length_s": None, "overlap": None}


def import_reference():
    """`qwen_tts` (raises ImportError with the reason when it cannot be used)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # transformers probes for torchaudio with find_spec, which raises on a stub module: it
    # must take its inventory before the stub below is in place.
    import transformers  # noqa: F401

    try:
        import torchaudio  # noqa: F401
    except Exception:
        # qwen_tts imports torchaudio at import time, but only its unreleased 25 Hz path uses it.
        for name in ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi"):
            sys.modules[name] = types.ModuleType(name)
    import qwen_tts

    return qwen_tts


def is_official(folder: Path) -> bool:
    talker = json.loads((folder / "config.json").read_text()).get("talker_config", {})
    return "rope_scaling" in talker and (folder / "speech_tokenizer" / "preprocessor_config.json").exists()


def official_view(folder: Path) -> Path:
    """`folder` itself when the official loader takes it, else its official view (made once)."""
    folder = Path(folder)
    if is_official(folder):
        return folder
    view = folder.with_name(folder.name + "-official")
    if (view / "config.json").exists():
        return view
    logger.info("writing an official-layout view of %s to %s", folder, view)
    view.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        if (folder / name).exists() and not (view / name).exists():
            (view / name).symlink_to((folder / name).resolve())
    _write_codec(folder / "speech_tokenizer", view / "speech_tokenizer")
    config = json.loads((folder / "config.json").read_text())
    talker = config["talker_config"]
    half = talker["head_dim"] // 2
    side = half * 20 // 64
    talker.setdefault("rope_scaling", {"interleaved": True, "mrope_section": [half - 2 * side, side, side],
                                       "rope_type": "default"})
    talker.setdefault("hidden_act", "silu")
    talker.setdefault("position_id_per_seconds", 13)
    config.setdefault("assistant_token_id", 77091)
    config.setdefault("architectures", ["Qwen3TTSForConditionalGeneration"])
    (view / "config.json").write_text(json.dumps(config, indent=2))  # last: marks the view complete
    return view


def _write_codec(ours: Path, out: Path) -> None:
    """The official speech tokenizer with our codec's decoder shapes and random weights."""
    import torch

    core = import_reference().core
    decoder = json.loads((ours / "config.json").read_text())["decoder_config"]
    config = core.Qwen3TTSTokenizerV2Config(decoder_config=decoder)
    torch.manual_seed(0)
    model = core.Qwen3TTSTokenizerV2Model(config).eval()
    with torch.no_grad():
        # HF init leaves the codebooks empty; a zero usage count would divide by zero.
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("cluster_usage"):
                t.fill_(1.0)
            elif name.endswith(("embedding_sum", "embed_sum")):
                t.copy_(torch.randn(t.shape) * 0.5)
    model.save_pretrained(out, safe_serialization=True)
    (out / "preprocessor_config.json").write_text(json.dumps(_FEATURE_EXTRACTOR, indent=2))
    (out / "generation_config.json").unlink(missing_ok=True)


class _Clock:
    """Wall time of every call of a wrapped function (the reference runs synchronously on the CPU)."""

    def __init__(self):
        self.calls: list[float] = []

    def wrap(self, fn):
        # wraps() keeps the signature: HF's generate checks its kwargs against forward's.
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append(time.perf_counter() - start)
        return timed


def load_reference(view: Path, dtype: str):
    import torch

    qwen_tts = import_reference()
    return qwen_tts.Qwen3TTSModel.from_pretrained(str(view), dtype=getattr(torch, dtype), device_map="cpu")


def run_reference_once(ref, kind: str, text: str, speaker: str | None, instruct: str | None,
                       frames: int) -> dict:
    """One greedy run of the official generate: talker, code predictor and decode timed apart.

    The reference has no streaming output, so its first audio arrives with the whole clip.
    """
    import torch

    talker = ref.model.talker
    steps, predictor, decode = _Clock(), _Clock(), _Clock()
    originals = (talker.forward, talker.code_predictor.generate, ref.model.speech_tokenizer.decode)
    talker.forward = steps.wrap(talker.forward)
    talker.code_predictor.generate = predictor.wrap(talker.code_predictor.generate)
    ref.model.speech_tokenizer.decode = decode.wrap(ref.model.speech_tokenizer.decode)
    kwargs = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=frames + 1)
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            if kind == "custom_voice":
                wavs, sr = ref.generate_custom_voice(text, speaker=speaker, language="auto", **kwargs)
            else:
                wavs, sr = ref.generate_voice_design(text, instruct=instruct, language="auto", **kwargs)
        total = time.perf_counter() - start
    finally:
        talker.forward, talker.code_predictor.generate, ref.model.speech_tokenizer.decode = originals
    n = max(round(len(wavs[0]) / sr * SAMPLE_RATE / SAMPLES_PER_FRAME), 1)
    # Each step after the prefill runs the code predictor for the previous draw inside forward.
    cp = sum(predictor.calls) / n
    talker_ms = (sum(steps.calls[1:]) - sum(predictor.calls)) / n
    dec = sum(decode.calls) / n
    seconds = n * SAMPLES_PER_FRAME / SAMPLE_RATE
    return {"frames": n, "audio_seconds": seconds, "first_chunk_s": total, "rtf": total / seconds,
            "prefill_s": steps.calls[0] if steps.calls else None, "talker_ms": talker_ms * 1e3,
            "code_predictor_ms": cp * 1e3, "talker_code_predictor_ms": (talker_ms + cp) * 1e3,
            "decode_ms": dec * 1e3, "ms_per_frame": (talker_ms + cp + dec) * 1e3,
            "kernel_floor_ms": None, "floor_ratio": None, "host_syncs_per_frame": None,
            "peak_memory_mb": None}


def child_env() -> dict:
    """The environment for the reference's process: PyTorch keeps its own BLAS (MKL on x86).

    A preloaded OpenBLAS would take over torch's matmuls too (3-8x slower here), so it is left
    out, with the sgemv forwarder that sits in front of it.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    kept = [p for p in env.pop("LD_PRELOAD", "").split() if "libopenblas" not in p and "libmlx_qwen3tts" not in p]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    env.pop("OPENBLAS_CORETYPE", None)
    return env


def benchmark_reference(model: Path, dtype: str, ours: dict, text: str, frames: int,
                        runs: int) -> tuple[dict, list[dict]]:
    """The median of `runs` reference runs after a short warm-up, on the official view of `model`,
    in a process of its own (see `child_env`)."""
    if importlib.util.find_spec("qwen_tts") is None:
        raise ImportError("qwen-tts is not installed (pip install --no-deps qwen-tts==0.1.1)")
    view = official_view(model)
    args = {"view": str(view), "dtype": dtype, "kind": ours["kind"], "text": text, "speaker": ours["speaker"],
            "instruct": ours["instruct"], "frames": frames, "runs": runs}
    return run_peer("reference", [sys.executable, "-m", __name__], child_env(), MARK, args, view, ours)


def median_of(results: list[dict]) -> dict:
    """Per key, the median over runs (None where any run has None)."""
    return {k: None if any(r[k] is None for r in results) else statistics.median(r[k] for r in results)
            for k in results[0]}


def run_peer(stack: str, command: list[str], env: dict, mark: str, args: dict, view: Path,
             ours: dict) -> tuple[dict, list[dict]]:
    """Runs `command --child ARGS` and reads back the run list it prints after `mark`;
    returns its median as a result row beside ours, and the runs."""
    proc = subprocess.run([*command, "--child", json.dumps(args)], capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(mark)]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{stack} run failed (exit {proc.returncode}): {tail[0]}")
    results = json.loads(lines[-1][len(mark):])
    return {"stack": stack, "model": str(view), "kind": ours["kind"], "size": ours["size"], "dtype": args["dtype"],
            "quantization": None, "frames_requested": args["frames"], "runs": args["runs"],
            **median_of(results)}, results


def _child(args: dict) -> list[dict]:
    ref = load_reference(Path(args["view"]), args["dtype"])
    call = dict(kind=args["kind"], text=args["text"], speaker=args["speaker"], instruct=args["instruct"])
    run_reference_once(ref, frames=min(args["frames"], 2), **call)  # warm-up
    return [run_reference_once(ref, frames=args["frames"], **call) for _ in range(args["runs"])]


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    print(MARK + json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
