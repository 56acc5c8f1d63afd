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
import statistics
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


def _load(args: dict):
    import mlx.core as mx
    import mlx.nn as nn
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
    if args.get("bits"):
        # As `bench --quantize` does ours: every linear layer of the talker (code predictor
        # included) whose input width divides by the group; embeddings stay float.
        nn.quantize(model.talker, group_size=64, bits=args["bits"],
                    class_predicate=lambda _, m: isinstance(m, nn.Linear) and m.weight.shape[-1] % 64 == 0)
    mx.eval(model.talker.parameters())
    return model


def _child(args: dict) -> list[dict]:
    import mlx.core as mx

    model = _load(args)
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


def _batch_child(args: dict) -> list[dict]:
    """Per round, every size once: `batch_generate` on `size` texts, greedy, `frames` each. Its
    session advances all streams one batched step at a time and decodes a stream whole when it
    ends; the steps are timed, less the decodes inside them, so frames/s is the loop's alone."""
    import mlx.core as mx
    from mlx_audio.tts.models.qwen3_tts.continuous_batching import Qwen3TTSBatchSession

    model = _load(args)
    steps, decoded = [], [0.0]
    advance, decode = Qwen3TTSBatchSession._advance_active, Qwen3TTSBatchSession._decode_state

    def timed_decode(self, state):
        start = time.perf_counter()
        event = decode(self, state)
        if event.audio is not None:
            mx.eval(event.audio)
        decoded[0] += time.perf_counter() - start
        return event

    def timed_advance(self):
        streams, before, start = len(self._active), decoded[0], time.perf_counter()
        events = advance(self)
        steps.append((streams, time.perf_counter() - start - (decoded[0] - before)))
        return events

    Qwen3TTSBatchSession._advance_active, Qwen3TTSBatchSession._decode_state = timed_advance, timed_decode

    def once(size: int) -> dict:
        steps.clear()
        decoded[0] = 0.0
        texts = [args["texts"][i % len(args["texts"])] for i in range(size)]
        start = time.perf_counter()
        out = list(model.batch_generate(texts, voices=[args["speaker"]] * size, temperature=0.0,
                                        max_tokens=args["frames"]))
        wall = time.perf_counter() - start
        loop_frames, loop_s = sum(n for n, _ in steps), sum(s for _, s in steps)
        return {"size": size, "frames": sum(r.token_count for r in out), "frames_per_s": loop_frames / loop_s,
                "ms_per_step": loop_s / len(steps) * 1e3, "wall_s": wall, "decode_s": decoded[0]}

    for size in args["sizes"]:  # warm-up: traces and caches per size
        once(size)
    return [once(size) for _ in range(args["rounds"]) for size in args["sizes"]]


def benchmark_mlx_audio_batch(model: Path, dtype: str | None, bits: int | None, speaker: str, texts: list[str],
                              sizes: list[int], frames: int, rounds: int, python: str,
                              forwarder: bool = False) -> dict:
    """mlx-audio's `batch_generate` under the load `bench --batch` puts on ours: per size, the
    median over `rounds` of its loop's aggregate frames/s and ms per batched step."""
    from .reference import official_view, run_child

    args = {"model": str(official_view(Path(model))), "dtype": dtype, "bits": bits, "speaker": speaker,
            "texts": texts, "sizes": sizes, "frames": frames, "rounds": rounds}
    results = run_child("mlx-audio", [python, str(Path(__file__).resolve())], peer_env(forwarder), MARK, args)
    out = {}
    for size in sizes:
        mine = [r for r in results if r["size"] == size]
        out[size] = {key: statistics.median(r[key] for r in mine)
                     for key in ("frames_per_s", "ms_per_step", "frames", "wall_s", "decode_s")}
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    # Run as a script, this folder heads sys.path, and this very file would be `mlx_audio`.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    child_args = json.loads(sys.argv[2])
    print(MARK + json.dumps(_batch_child(child_args) if "sizes" in child_args else _child(child_args)), flush=True)
