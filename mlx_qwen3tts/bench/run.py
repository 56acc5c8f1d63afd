"""`python -m mlx_qwen3tts.bench`: time to first audio, RTF and per-frame cost on a checkpoint.

    python -m mlx_qwen3tts.bench --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --frames 50
    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --kind custom_voice --json out.json
    python -m mlx_qwen3tts.bench --make-checkpoint 1.7b --quantize 8 4 --device-report

    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --dtype float32 bfloat16 --quantize 8 --vs reference \
        --reference-python "$(python tests/official/venv.py)"
    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --dtype float32 --vs mlx-audio \
        --mlx-audio-python /path/to/venv/bin/python

Generation is greedy with a fixed token budget, so every run does the same work; a random
model may still draw EOS early, so per-frame figures use the frames actually produced.
The frame loop is timed as a consumer sees it; its talker and code-predictor halves are
timed apart in a second pass, and the kernel floor (`kernel_floor.py`) is what the backend
allows for the same frame: its matrix products and attention. On a Linux CPU, bfloat16
matmuls take a slow path.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..audio import SAMPLE_RATE, SAMPLES_PER_FRAME
from .reference import median_of
from ..blas import warn_if_slow
from ..generation import HostSyncs
from .kernel_floor import kernel_floor, time_halves
from ..rtf import SIZES, figures, report
from ..pipeline import DEFAULT_CHUNK_FRAMES
from .table import column_label, format_table

logger = logging.getLogger(__name__)

DEFAULT_TEXT = "Hello there. This is a short benchmark sentence, read out loud at an even pace."
DEFAULT_INSTRUCT = "A calm, clear adult voice."
GROUP_SIZE = 64
def _reset_peak() -> None:
    if hasattr(mx, "reset_peak_memory"):
        mx.reset_peak_memory()


def _peak_mb() -> float | None:
    get = getattr(mx, "get_peak_memory", None)
    return get() / 2**20 if get else None


def quantize(tts, bits: int, group_size: int = GROUP_SIZE) -> int:
    """Quantizes the talker's and code predictor's Linear layers in memory; returns how many.

    Embeddings stay in float; a layer whose input width is not a multiple of `group_size` is skipped.
    """
    count = 0

    def predicate(_, module) -> bool:
        nonlocal count
        ok = isinstance(module, nn.Linear) and module.weight.shape[-1] % group_size == 0
        count += ok
        return ok

    nn.quantize(tts.model.talker, group_size=group_size, bits=bits, class_predicate=predicate)
    mx.eval(tts.model.talker.parameters())
    return count


def _time_frames(tts, text: str, kwargs: dict) -> tuple[np.ndarray, float, float, float | None]:
    """The frame loop as a consumer runs it: (codes, seconds to first frame, steady s/frame,
    host syncs per steady-state frame)."""
    start = time.perf_counter()
    stamps, codes, syncs = [], [], []
    for frame, _ in tts.iter_frames(text, **kwargs):
        codes.append(np.asarray(frame))  # forces the frame, as a consumer would
        stamps.append(time.perf_counter())
        syncs.append(HostSyncs.count)
    if not codes:
        return np.zeros((0, 16), np.int32), time.perf_counter() - start, 0.0, None
    first = stamps[0] - start
    # Steady state excludes the prefill; with a single frame there is nothing else to time.
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else first
    per_frame = (syncs[-1] - syncs[0]) / (len(syncs) - 1) if len(syncs) > 1 else None
    return np.stack(codes), first, steady, per_frame


def _time_decode(decoder, codes: np.ndarray, chunk: int) -> float:
    """Seconds per frame to step the codec decoder through `codes` in streaming-size chunks."""
    if not len(codes):
        return 0.0
    decoder.reset_state()
    try:
        start = time.perf_counter()
        for i in range(0, len(codes), chunk):
            np.asarray(decoder.step(mx.array(codes[i:i + chunk])[None]))
        return (time.perf_counter() - start) / len(codes)
    finally:
        decoder.reset_state()


def run_once(tts, text: str, kwargs: dict) -> dict:
    """One measured run: a whole stream (first chunk, RTF), the frame loop and decode timed apart."""
    _reset_peak()
    start, first_chunk, samples = time.perf_counter(), float("nan"), 0
    for chunk in tts.stream(text, **kwargs):
        if not samples:
            first_chunk = time.perf_counter() - start
        samples += len(chunk.samples)
    streamed = time.perf_counter() - start
    codes, prefill, steady, syncs = _time_frames(tts, text, kwargs)
    decode = _time_decode(tts.speech_decoder, codes, DEFAULT_CHUNK_FRAMES[-1])
    audio = len(codes) * SAMPLES_PER_FRAME / SAMPLE_RATE
    return {
        "frames": len(codes), "audio_seconds": audio, "first_chunk_s": first_chunk,
        "rtf": streamed / audio if audio else None, "prefill_s": prefill,
        "talker_code_predictor_ms": steady * 1e3, "host_syncs_per_frame": syncs,
        "decode_ms": decode * 1e3, "ms_per_frame": (steady + decode) * 1e3, "peak_memory_mb": _peak_mb(),
    }


def request_kwargs(tts, frames: int, speaker: str | None = None, instruct: str | None = None) -> dict:
    """Greedy generation of `frames` frames (a random model may still stop early on EOS)."""
    if tts.kind == "custom_voice":
        speaker = speaker or tts.speakers[0]
    elif tts.kind == "voice_design":
        instruct = instruct or DEFAULT_INSTRUCT
    return {"speaker": speaker, "instruct": instruct, "temperature": 0, "subtalker_temperature": 0,
            "max_new_tokens": frames + 1, "seed": 0}


def benchmark(tts, *, text: str = DEFAULT_TEXT, speaker: str | None = None, instruct: str | None = None,
              frames: int = 50, runs: int = 3, floor_reps: int = 5) -> dict:
    """Warms up, then the median of `runs` runs of `run_once`, the halves and the kernel floor."""
    if frames < 1 or runs < 1:
        raise ValueError("--frames and --runs must be at least 1")
    kwargs = request_kwargs(tts, frames, speaker, instruct)
    logger.info("warming up")
    run_once(tts, text, {**kwargs, "max_new_tokens": min(frames, 2) + 1})
    results = []
    for i in range(runs):
        results.append(run_once(tts, text, kwargs))
        logger.info("run %d/%d: %.1f ms/frame", i + 1, runs, results[-1]["ms_per_frame"])
    median = median_of(results)
    talker, predictor = time_halves(tts, text, kwargs, max(int(median["frames"]), 1))
    # The talker's mean context over the timed frames: the prompt plus half of them.
    context = tts.prepare(text, **kwargs).prompt.prefill.shape[1] + int(median["frames"]) // 2
    floor = kernel_floor(tts.model.talker, floor_reps, context)
    loop = median["talker_code_predictor_ms"]
    median |= {"talker_ms": talker * 1e3, "code_predictor_ms": predictor * 1e3, **floor,
               "floor_ratio": loop / floor["kernel_floor_ms"] if median["frames"] else None}
    return {"median": median, "runs": results, "speaker": kwargs["speaker"], "instruct": kwargs["instruct"]}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlx-qwen3tts bench", description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group()  # one of them, but for --small-m
    source.add_argument("--model", help="checkpoint folder or Hugging Face repo id")
    source.add_argument("--make-checkpoint", choices=["tiny", "0.6b", "1.7b"],
                        help="write (once, then reuse) a random checkpoint of this size and benchmark it")
    p.add_argument("--kind", choices=["custom_voice", "voice_design"], default="custom_voice",
                   help="model kind for --make-checkpoint")
    p.add_argument("--out", help="folder for --make-checkpoint (default ~/.cache/mlx-qwen3tts/bench/SIZE-KIND)")
    p.add_argument("--speaker", help="preset speaker (CustomVoice; default: the first one)")
    p.add_argument("--instruct", help="voice description (VoiceDesign; default: a fixed one)")
    p.add_argument("--text", default=DEFAULT_TEXT)
    p.add_argument("--frames", type=int, default=50, help="frames to generate per run (default 50)")
    p.add_argument("--runs", type=int, default=3, help="measured runs, median reported (default 3)")
    p.add_argument("--floor-reps", type=int, default=5, help="frames timed for the kernel floor (default 5)")
    p.add_argument("--dtype", nargs="+", choices=["float32", "bfloat16"],
                   help="cast weights, one configuration per dtype (default: as stored)")
    p.add_argument("--quantize", nargs="+", type=int, choices=[8, 4], default=[],
                   help=f"also run the first dtype with the talker and code predictor quantized "
                        f"to these bits (group size {GROUP_SIZE})")
    p.add_argument("--vs", nargs="+", choices=["reference", "mlx-audio"], default=[],
                   help="also time these implementations on the same checkpoint, greedy, same frames")
    p.add_argument("--reference-python", metavar="PYTHON",
                   help="interpreter of a venv with the official implementation (torch, qwen-tts), for --vs "
                        "reference (default: this one, if it has it)")
    p.add_argument("--mlx-audio-python", metavar="PYTHON",
                   help="interpreter that has mlx-audio, for --vs mlx-audio (default: this one, if it has it)")
    p.add_argument("--peer-forwarder", action="store_true",
                   help="give mlx-audio this package's sgemv forwarder too (Linux), to compare the loops alone")
    p.add_argument("--live", action="store_true",
                   help="also time live text (word by word) against the whole text, in both prompt layouts")
    p.add_argument("--batch", nargs="+", type=int, metavar="N",
                   help="concurrent streams in one batch instead of the single-stream figures: aggregate "
                        "frames/s, per-stream ms/frame, time to first frame (e.g. --batch 1 2 4 8)")
    p.add_argument("--batch-frames", type=int, default=24, help="frames per stream for --batch (default 24)")
    p.add_argument("--small-m", action="store_true",
                   help="only time x @ W.T for 1, 2, 4, 8 and 16 rows by BLAS path (Linux; no checkpoint)")
    p.add_argument("--json", dest="json_out", help="write the figures to this JSON file")
    p.add_argument("--device-report", action="store_true",
                   help="also print, per configuration, weight bytes read per frame, the bandwidth the "
                        "frame loop implies, whether it keeps up with real time and what to try if not")
    return p


def _batch(tts, dtype: str | None, bits: int | None, args) -> tuple[dict, list[dict]]:
    from .batch import batch_benchmark, format_batch

    out = batch_benchmark(tts, args.batch, args.batch_frames, args.runs, args.speaker)
    label = f"{dtype or 'stored dtype'}{f' q{bits}' if bits else ''}"
    print(format_batch(f"{tts.kind} {tts.config.tts_model_size}, {label}, {args.batch_frames} frames a stream, "
                       f"median of {args.runs}", out))
    result = {"stack": "mlx_qwen3tts", "model": str(tts.path), "kind": tts.kind, "size": tts.config.tts_model_size,
              "dtype": dtype, "quantization": bits, "batch": out}
    return result, []


def _ours(model, dtype: str | None, bits: int | None, args) -> tuple[dict, list[dict]]:
    from ..loading import load

    tts = load(model, dtype=dtype)
    layers = quantize(tts, bits) if bits else None
    if args.batch:
        return _batch(tts, dtype, bits, args)
    out = benchmark(tts, text=args.text, speaker=args.speaker, instruct=args.instruct,
                    frames=args.frames, runs=args.runs, floor_reps=args.floor_reps)
    if args.live:
        from .live_text import format_live, live_benchmark

        # Sampled, as a user hears it, with a budget: a random model need not draw EOS.
        kwargs = {k: v for k, v in request_kwargs(tts, args.frames, args.speaker, args.instruct).items()
                  if k in ("speaker", "instruct", "max_new_tokens", "seed")}
        out["live"] = live_benchmark(tts, args.text, kwargs, args.runs)
        print(format_live(f"live text, {dtype or 'stored dtype'}{f' q{bits}' if bits else ''}", out["live"]))
    stored = str(tts.model.talker.model.norm.weight.dtype)
    median = out["median"]
    result = {"stack": "mlx_qwen3tts", "model": str(tts.path), "kind": tts.kind,
              "size": tts.config.tts_model_size, "dtype": dtype or stored.removeprefix("mlx.core."),
              "quantization": bits, "quantized_layers": layers, "frames_requested": args.frames,
              "runs": args.runs, "speaker": out["speaker"], "instruct": out["instruct"], **median,
              "device_report": figures(tts, median["talker_code_predictor_ms"], median["ms_per_frame"]),
              **({"live": out["live"]} if "live" in out else {})}
    return result, out["runs"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warn_if_slow()
    from ..testing import make_checkpoint
    from .mlx_audio import benchmark_mlx_audio, find_python, skip_reason
    from .reference import benchmark_reference, official_view

    if args.floor_reps < 1:
        print("error: --floor-reps must be at least 1", file=sys.stderr)
        return 1
    if args.small_m:
        from .small_m import measure, table

        rows = [1, 2, 4, 8, 16]
        print(table(measure(rows, rounds=args.runs), rows))
        return 0
    if not (args.model or args.make_checkpoint):
        _parser().error("one of the arguments --model --make-checkpoint is required")
    results, runs, skipped = [], {}, []
    try:
        if args.json_out and not Path(args.json_out).expanduser().parent.is_dir():
            raise FileNotFoundError(f"cannot write {args.json_out}: its folder does not exist")
        model = args.model or make_checkpoint(args.make_checkpoint, args.kind, args.out)
        dtypes = args.dtype or [None]
        for dtype, bits in [(d, None) for d in dtypes] + [(dtypes[0], b) for b in args.quantize]:
            result, r = _ours(model, dtype, bits, args)
            results.append(result)
            runs[column_label(result)] = r
            gc.collect()
        if "reference" in args.vs:
            for dtype in dict.fromkeys(r["dtype"] for r in results):
                try:
                    result, r = benchmark_reference(Path(model), dtype, results[0], args.text, args.frames, args.runs,
                                                    args.reference_python)
                except ImportError as e:
                    skipped.append({"stack": "reference", "reason": f"official implementation not importable: {e}"})
                    break
                results.append(result)
                runs[column_label(result)] = r
                gc.collect()
        if "mlx-audio" in args.vs:
            python = find_python(args.mlx_audio_python)
            if python is not None and args.reference_python:
                official_view(Path(model), args.reference_python)  # its codec, written by the official classes
            if python is None:
                skipped.append({"stack": "mlx-audio", "reason": skip_reason(args.mlx_audio_python)})
            for dtype in dict.fromkeys(r["dtype"] for r in results) if python else ():
                try:
                    result, r = benchmark_mlx_audio(Path(model), dtype, results[0], args.text, args.frames,
                                                    args.runs, python, args.peer_forwarder)
                except RuntimeError as e:
                    skipped.append({"stack": "mlx-audio", "reason": str(e)})
                    break
                results.append(result)
                runs[column_label(result)] = r
    except (FileNotFoundError, NotADirectoryError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    first = results[0]
    if args.batch:
        if args.json_out:
            Path(args.json_out).expanduser().write_text(json.dumps({"results": results}, indent=2))
        return 0
    print(format_table(f"{first['kind']} {first['size']}, {args.frames} frames, median of {args.runs}", results))
    for s in skipped:
        print(f"{s['stack']}: skipped: {s['reason']}")
    for r in results if args.device_report else ():
        if "device_report" in r:
            print(report(r["device_report"], f"{r['kind']} {SIZES.get(r['size'], r['size'])}, {column_label(r)}"))
    if args.json_out:
        Path(args.json_out).expanduser().write_text(json.dumps(
            {"results": results, "skipped": skipped, "runs": runs}, indent=2))
        print(f"wrote {args.json_out}")
    return 0
