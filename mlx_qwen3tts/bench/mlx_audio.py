"""mlx-audio's Qwen3-TTS timed on the benchmark's checkpoint, in a subprocess of its own interpreter.

mlx-audio pins libraries (transformers 5, huggingface_hub 1) that may not sit beside the official
implementation, so it often lives in a virtual environment of its own: `--mlx-audio-python` names
that interpreter; by default the current one is used when it can import `mlx_audio`. This file is
also the child program (`python mlx_audio.py --child ARGS`); its top level imports only the
standard library so that it runs under any interpreter that has mlx-audio.

The child loads the official-layout view of the checkpoint (the one the reference uses), casts its
talker to the requested dtype (the codec stays as stored) and calls `generate_custom_voice` or
`generate_voice_design` greedily (temperature 0; the checkpoint's repetition penalty applies, as in
ours and the reference). It
stamps each talker draw to time the frame loop in steady state, and times the codec decode, which
mlx-audio runs once on the whole clip after the loop, apart (its codec is compiled and traced once
per clip length, so the warm-up generates the full length). The talker and code-predictor halves
are not separable without changing its loop, so they are reported as null. Its decode is one call
on the whole clip, not streaming steps, and its first audio arrives with the whole clip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MARK = "MLX_AUDIO_BENCH_JSON "
NOT_INSTALLED = "mlx-audio is not installed (pip install mlx-audio)"
NULLS = ("talker_ms", "code_predictor_ms", "kernel_floor_ms", "floor_ratio", "host_syncs_per_frame")


def find_python(python: str | None = None) -> str | None:
    """The interpreter to run mlx-audio with: `python` when it imports mlx_audio, else the current
    one when it does, else None."""
    if python:
        exe = shutil.which(python) or python
        try:
            probe = subprocess.run([exe, "-c", "import mlx_audio"], capture_output=True, text=True)
        except OSError:
            return None
        return exe if probe.returncode == 0 else None
    return sys.executable if importlib.util.find_spec("mlx_audio") is not None else None


def skip_reason(python: str | None = None) -> str:
    return NOT_INSTALLED if python is None else f"mlx-audio is not importable by {python}"


def peer_env(forwarder: bool = False) -> dict:
    """mlx-audio runs on the same OpenBLAS and kernels as ours; our sgemv forwarder
    (`gemv_forward.c`) is part of this package, not of a plain MLX set-up, so it is left out
    unless `forwarder` (which isolates the loops from the BLAS fix)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    preload = [p for p in env.pop("LD_PRELOAD", "").split() if forwarder or "libmlx_qwen3tts" not in p]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    return env


def benchmark_mlx_audio(model: Path, dtype: str, ours: dict, text: str, frames: int, runs: int,
                        python: str, forwarder: bool = False) -> tuple[dict, list[dict]]:
    """The median of `runs` mlx-audio runs after a short warm-up, on the official view of `model`."""
    from .reference import official_view, run_peer

    view = official_view(Path(model))
    args = {"model": str(view), "dtype": dtype, "kind": ours["kind"], "text": text, "speaker": ours["speaker"],
            "instruct": ours["instruct"], "frames": frames, "runs": runs}
    result, results = run_peer("mlx-audio", [python, str(Path(__file__).resolve())], peer_env(forwarder), MARK,
                               args, view, ours)
    return {**result, "sgemv_forwarder": forwarder}, results


# --- the child: runs under the mlx-audio interpreter -------------------------------------------


def _child(args: dict) -> list[dict]:
    import mlx.core as mx
    from mlx_audio.tts.utils import load_model

    model = load_model(Path(args["model"]))
    if getattr(model, "tokenizer", None) is None:
        # A tokenizer_config.json without tokenizer_class: the Qwen2 BPE files load directly.
        from transformers import Qwen2Tokenizer

        model.tokenizer = Qwen2Tokenizer.from_pretrained(args["model"])
    if args["dtype"]:
        # The talker (with its code predictor); the codec, stored in float32, is held by a compiled
        # function that set_dtype cannot walk.
        model.talker.set_dtype(getattr(mx, args["dtype"]))
        mx.eval(model.talker.parameters())

    draws, decodes = [], []
    sample, decode = model._sample_token, model.speech_tokenizer.decode

    def stamped_sample(*a, **kw):
        if kw.get("suppress_tokens"):  # the talker's draw, once per frame; the code predictor passes none
            draws.append(time.perf_counter())
        return sample(*a, **kw)

    def timed_decode(*a, **kw):
        start = time.perf_counter()
        out = decode(*a, **kw)
        mx.eval(out)
        decodes.append((start, time.perf_counter()))
        return out

    model._sample_token, model.speech_tokenizer.decode = stamped_sample, timed_decode

    def once(frames: int) -> dict:
        draws.clear()
        decodes.clear()
        mx.reset_peak_memory()
        call = {"text": args["text"], "language": "auto", "temperature": 0.0, "max_tokens": frames}
        start = time.perf_counter()
        if args["kind"] == "custom_voice":
            out = list(model.generate_custom_voice(speaker=args["speaker"], **call))
        else:
            out = list(model.generate_voice_design(instruct=args["instruct"], **call))
        total = time.perf_counter() - start
        n = sum(r.token_count for r in out)
        if not n or not decodes:
            return {"frames": 0, "audio_seconds": 0.0, "first_chunk_s": total, "rtf": None, "prefill_s": None,
                    "talker_code_predictor_ms": None, "decode_ms": None, "ms_per_frame": None,
                    "peak_memory_mb": mx.get_peak_memory() / 2**20, **dict.fromkeys(NULLS)}
        loop_end = draws[n] if len(draws) > n else decodes[0][0]  # draws[n] starts the EOS step
        prefill = draws[1] - start if n > 1 else loop_end - start
        steady = (loop_end - draws[1]) / (n - 1) if n > 1 else prefill
        dec = (decodes[0][1] - decodes[0][0]) / n
        audio = n * 0.08
        return {"frames": n, "audio_seconds": audio, "first_chunk_s": total, "rtf": total / audio,
                "prefill_s": prefill, "talker_code_predictor_ms": steady * 1e3, "decode_ms": dec * 1e3,
                "ms_per_frame": (steady + dec) * 1e3, "peak_memory_mb": mx.get_peak_memory() / 2**20,
                **dict.fromkeys(NULLS)}

    once(args["frames"])  # warm-up at full length: the compiled codec traces once per clip length
    return [once(args["frames"]) for _ in range(args["runs"])]


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    # Run as a script, this folder heads sys.path, and this very file would be `mlx_audio`.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    print(MARK + json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
