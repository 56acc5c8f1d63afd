"""`python -m mlx_qwen3tts.bench`: time to first audio, RTF and per-frame cost on a checkpoint.

    python -m mlx_qwen3tts.bench --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --frames 50
    python -m mlx_qwen3tts.bench --make-checkpoint 0.6b --kind custom_voice --json out.json

Generation is greedy with a fixed token budget, so every run does the same work; a random
model may still draw EOS early, so per-frame figures use the frames actually produced.
On a Linux CPU, bfloat16 matmuls take a slow path: compare with `--dtype float32` there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from .streaming import DEFAULT_CHUNK_FRAMES

logger = logging.getLogger(__name__)

DEFAULT_TEXT = "Hello there. This is a short benchmark sentence, read out loud at an even pace."
DEFAULT_INSTRUCT = "A calm, clear adult voice."
# Printed rows: (result key, label, format).
ROWS = [
    ("frames", "frames produced", "{:.0f}"),
    ("first_chunk_s", "time to first audio chunk (s)", "{:.3f}"),
    ("rtf", "RTF (compute s / audio s)", "{:.3f}"),
    ("prefill_s", "prefill + first frame (s)", "{:.3f}"),
    ("talker_code_predictor_ms", "talker + code predictor (ms/frame)", "{:.1f}"),
    ("decode_ms", f"decode, {DEFAULT_CHUNK_FRAMES[-1]}-frame steps (ms/frame)", "{:.1f}"),
    ("ms_per_frame", "total steady state (ms/frame)", "{:.1f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
]


def _reset_peak() -> None:
    if hasattr(mx, "reset_peak_memory"):
        mx.reset_peak_memory()


def _peak_mb() -> float | None:
    get = getattr(mx, "get_peak_memory", None)
    return get() / 2**20 if get else None


def _time_frames(tts, text: str, kwargs: dict) -> tuple[np.ndarray, float, float]:
    """Runs the talker + code predictor loop alone: (codes, seconds to first frame, steady s/frame)."""
    start = time.perf_counter()
    stamps, codes = [], []
    for frame, _ in tts.iter_frames(text, **kwargs):
        codes.append(np.asarray(frame))  # forces the frame, as a consumer would
        stamps.append(time.perf_counter())
    if not codes:
        return np.zeros((0, 16), np.int32), time.perf_counter() - start, 0.0
    first = stamps[0] - start
    # Steady state excludes the prefill; with a single frame there is nothing else to time.
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else first
    return np.stack(codes), first, steady


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
    """One measured run: stream (first chunk), generate (RTF), frame loop and decode timed apart."""
    _reset_peak()
    start = time.perf_counter()
    stream = tts.stream(text, **kwargs)
    try:
        next(stream)
        first_chunk = time.perf_counter() - start
    except StopIteration:
        first_chunk = float("nan")  # no frame at all: EOS on the first draw
    finally:
        stream.close()
    audio = tts.generate(text, **kwargs)
    codes, prefill, steady = _time_frames(tts, text, kwargs)
    decode = _time_decode(tts.speech_decoder, codes, DEFAULT_CHUNK_FRAMES[-1])
    return {
        "frames": len(codes), "audio_seconds": audio.duration, "first_chunk_s": first_chunk,
        "rtf": audio.rtf, "prefill_s": prefill, "talker_code_predictor_ms": steady * 1e3,
        "decode_ms": decode * 1e3, "ms_per_frame": (steady + decode) * 1e3, "peak_memory_mb": _peak_mb(),
    }


def benchmark(tts, *, text: str = DEFAULT_TEXT, speaker: str | None = None, instruct: str | None = None,
              frames: int = 50, runs: int = 3) -> dict:
    """Warms up once, then returns the median of `runs` runs of `run_once` (and the runs)."""
    if frames < 1 or runs < 1:
        raise ValueError("--frames and --runs must be at least 1")
    if tts.kind == "custom_voice":
        speaker = speaker or tts.speakers[0]
    elif tts.kind == "voice_design":
        instruct = instruct or DEFAULT_INSTRUCT
    kwargs = {"speaker": speaker, "instruct": instruct, "temperature": 0, "subtalker_temperature": 0,
              "max_new_tokens": frames + 1, "seed": 0}
    logger.info("warming up")
    run_once(tts, text, kwargs)
    results = []
    for i in range(runs):
        results.append(run_once(tts, text, kwargs))
        logger.info("run %d/%d: %.1f ms/frame", i + 1, runs, results[-1]["ms_per_frame"])
    median = {k: (statistics.median(r[k] for r in results) if results[0][k] is not None else None)
              for k in results[0]}
    return {"median": median, "runs": results, "speaker": speaker, "instruct": instruct}


def format_table(title: str, result: dict) -> str:
    width = max(len(label) for _, label, _ in ROWS)
    lines = [title, "-" * len(title)]
    for key, label, fmt in ROWS:
        value = result.get(key)
        lines.append(f"{label:<{width}}  {'n/a' if value is None else fmt.format(value)}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlx_qwen3tts.bench", description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
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
    p.add_argument("--dtype", choices=["float32", "bfloat16"], help="cast weights (default: as stored)")
    p.add_argument("--json", dest="json_out", help="write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if sys.platform == "linux" and "openblas" not in os.environ.get("LD_PRELOAD", ""):
        logger.warning("LD_PRELOAD has no OpenBLAS: MLX's bundled BLAS is ~30x slower on Linux; "
                       "run with LD_PRELOAD=$(ldconfig -p | grep -m1 -o '/.*libopenblas.so.0')")
    from . import load
    from .bench_checkpoint import make_checkpoint

    try:
        if args.json_out and not Path(args.json_out).expanduser().parent.is_dir():
            raise FileNotFoundError(f"cannot write {args.json_out}: its folder does not exist")
        model = args.model or make_checkpoint(args.make_checkpoint, args.kind, args.out)
        tts = load(model, dtype=args.dtype)
        out = benchmark(tts, text=args.text, speaker=args.speaker, instruct=args.instruct,
                        frames=args.frames, runs=args.runs)
    except (FileNotFoundError, NotADirectoryError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    dtype = args.dtype or str(tts.model.talker.codec_head.weight.dtype)
    result = {"stack": "mlx_qwen3tts", "model": str(tts.path), "kind": tts.kind,
              "size": tts.config.tts_model_size, "dtype": dtype.removeprefix("mlx.core."), "quantization": None,
              "frames_requested": args.frames, "runs": args.runs, **out["median"]}
    print(format_table(f"{tts!r}, {result['dtype']}, {args.frames} frames, median of {args.runs}", result))
    if args.json_out:
        Path(args.json_out).expanduser().write_text(json.dumps({"results": [result], "runs": out["runs"]},
                                                               indent=2))
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
