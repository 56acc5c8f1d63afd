"""`python -m mlx_qwen3tts.bench`: time to first audio, RTF and per-frame cost on a checkpoint.

    python -m mlx_qwen3tts.bench --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --frames 50
    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --kind custom_voice --json out.json
    python -m mlx_qwen3tts.bench --make-checkpoint 1.7b --quantize 8 4 --device-report

    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --dtype float32 bfloat16 --quantize 8 --vs reference \
        --reference-python "$(python tests/official/venv.py)"
    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --dtype float32 --vs mlx-audio \
        --mlx-audio-python /path/to/venv/bin/python

    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --dtype float32 --quantize 8 --batch 1 2 4 8 \
        --vs mlx-audio --mlx-audio-python /path/to/venv/bin/python

This file is the command line; `one_stream.py` measures one stream, `batch.py` concurrent
streams, `reference.py` and `mlx_audio.py` the peers on the same checkpoint. On a Linux CPU,
bfloat16 matmuls take a slow path.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
from pathlib import Path

from ..blas import warn_if_slow
from ..rtf import SIZES, figures, report
from .one_stream import DEFAULT_TEXT, GROUP_SIZE, benchmark, quantize, request_kwargs
from .table import column_label, format_table


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
    if not bits:  # the codec is not quantized: once per dtype
        from .decode_batch import decode_benchmark, format_decode

        out["decode"] = decode_benchmark(tts.speech_decoder, args.batch, args.batch_frames, rounds=args.runs)
        print(format_decode(f"codec decode, {label}, chunks of 4 frames", out["decode"]))
    result = {"stack": "mlx_qwen3tts", "model": str(tts.path), "kind": tts.kind, "size": tts.config.tts_model_size,
              "dtype": dtype, "quantization": bits, "speaker": out["speaker"], "batch": out}
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
    from .peers import run_peers

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
        run_peers(args, model, results, runs, skipped)
    except (FileNotFoundError, NotADirectoryError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    first = results[0]
    if args.batch:
        for s in skipped:
            print(f"{s['stack']}: skipped: {s['reason']}")
        if args.json_out:
            Path(args.json_out).expanduser().write_text(json.dumps({"results": results, "skipped": skipped},
                                                                   indent=2))
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
