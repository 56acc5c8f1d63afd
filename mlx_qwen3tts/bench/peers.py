"""The peers timed on the benchmark's checkpoint after ours, in the same invocation: the official
implementation and mlx-audio beside one stream, mlx-audio's `batch_generate` beside a batch."""

from __future__ import annotations

import gc
from pathlib import Path

from .batch import format_versus
from .mlx_audio import benchmark_mlx_audio, benchmark_mlx_audio_batch, find_python, skip_reason
from .reference import benchmark_reference, official_view
from .table import column_label


def run_peers(args, model: str, results: list[dict], runs: dict, skipped: list[dict]) -> None:
    """Adds the `--vs` peers' rows to `results` (their runs to `runs`); a peer that cannot run is
    listed in `skipped` with the reason."""
    if "reference" in args.vs and args.batch:
        skipped.append({"stack": "reference", "reason": "the official implementation has no batch path"})
    elif "reference" in args.vs:
        _reference(args, model, results, runs, skipped)
    if "mlx-audio" in args.vs:
        python = find_python(args.mlx_audio_python)
        if python is None:
            skipped.append({"stack": "mlx-audio", "reason": skip_reason(args.mlx_audio_python)})
            return
        if args.reference_python:
            official_view(Path(model), args.reference_python)  # its codec, written by the official classes
        (_mlx_audio_batch if args.batch else _mlx_audio)(args, model, python, results, runs, skipped)


def _reference(args, model: str, results: list[dict], runs: dict, skipped: list[dict]) -> None:
    for dtype in dict.fromkeys(r["dtype"] for r in results):
        try:
            result, r = benchmark_reference(Path(model), dtype, results[0], args.text, args.frames, args.runs,
                                            args.reference_python)
        except ImportError as e:
            skipped.append({"stack": "reference", "reason": f"official implementation not importable: {e}"})
            return
        results.append(result)
        runs[column_label(result)] = r
        gc.collect()


def _mlx_audio(args, model: str, python: str, results: list[dict], runs: dict, skipped: list[dict]) -> None:
    for dtype in dict.fromkeys(r["dtype"] for r in results):
        try:
            result, r = benchmark_mlx_audio(Path(model), dtype, results[0], args.text, args.frames,
                                            args.runs, python, args.peer_forwarder)
        except RuntimeError as e:
            skipped.append({"stack": "mlx-audio", "reason": str(e)})
            return
        results.append(result)
        runs[column_label(result)] = r


def _mlx_audio_batch(args, model: str, python: str, results: list[dict], runs: dict, skipped: list[dict]) -> None:
    """Per configuration of ours, the same texts, speaker, sizes and frames through mlx-audio."""
    for ours in list(results):
        if ours["kind"] != "custom_voice":  # its batch path takes preset speakers and Base models only
            skipped.append({"stack": "mlx-audio", "reason": f"batch_generate does not batch {ours['kind']}"})
            return
        batch = ours["batch"]
        try:
            peer = benchmark_mlx_audio_batch(Path(model), ours["dtype"], ours["quantization"], batch["speaker"],
                                             batch["texts"], list(batch["sizes"]), args.batch_frames,
                                             args.runs, python, args.peer_forwarder)
        except RuntimeError as e:
            skipped.append({"stack": "mlx-audio", "reason": str(e)})
            return
        batch["mlx_audio"] = peer
        print(format_versus(f"mlx-audio batch_generate, {column_label(ours)}", batch, peer))
