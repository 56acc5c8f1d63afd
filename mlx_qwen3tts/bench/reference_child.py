"""The official implementation's side of `bench --vs reference`: a script run by its own interpreter.

`python reference_child.py --child ARGS` (the interpreter of a venv that has torch and `qwen-tts`,
`--reference-python`) loads the official view of the checkpoint and prints its timed runs after
MARK; `--write-codec OURS OUT` writes that view's speech tokenizer. It imports only the standard
library, torch and qwen-tts: our package need not be installed beside them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

MARK = "REFERENCE_BENCH_JSON "
SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 1920
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


def write_codec(ours: Path, out: Path) -> None:
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
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    (tmp / "preprocessor_config.json").write_text(json.dumps(_FEATURE_EXTRACTOR, indent=2))
    (tmp / "generation_config.json").unlink(missing_ok=True)
    tmp.rename(out)


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


def _child(args: dict) -> list[dict]:
    ref = load_reference(Path(args["view"]), args["dtype"])
    call = dict(kind=args["kind"], text=args["text"], speaker=args["speaker"], instruct=args["instruct"])
    run_reference_once(ref, frames=min(args["frames"], 2), **call)  # warm-up
    return [run_reference_once(ref, frames=args["frames"], **call) for _ in range(args["runs"])]


if __name__ == "__main__":
    # Run as a script: this folder (our package's modules) is not a place to import from.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    if sys.argv[1:2] == ["--child"]:
        print(MARK + json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
    elif sys.argv[1:2] == ["--write-codec"]:
        write_codec(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: reference_child.py --child ARGS | --write-codec OURS OUT")
