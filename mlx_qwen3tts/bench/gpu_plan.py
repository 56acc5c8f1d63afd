"""What `gpu_check` runs, in which order, on which checkpoints; and the summary it prints."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .gpu_check import (
    FULL_CONFIGS,
    GPU_PARTS,
    QUICK_CONFIGS,
    has_gpu,
    machine,
    no_gpu_reason,
    run_part,
    skipped,
)


def _error(e: Exception) -> dict:
    return {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}


class Checkpoints:
    """The checkpoints to use: --model's, else random ones written (once) when first needed."""

    def __init__(self, args):
        self.models = list(args.model)
        self.sizes = [] if self.models else ["tiny"] if args.quick else list(args.sizes)
        self.folder = Path(args.checkpoints).expanduser() if args.checkpoints else None
        self._made: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.models or self.sizes)

    def __getitem__(self, i: int) -> str:
        if self.models:
            return self.models[i]
        size = self.sizes[i]
        if size not in self._made:
            from ..testing import make_checkpoint

            out = self.folder / f"{size}-custom_voice" if self.folder else None
            self._made[size] = str(make_checkpoint(size, "custom_voice", out))
        return self._made[size]


def plan(args, out: Path) -> int:
    """Runs every part, rewriting `out` after each; then writes and prints the summary.

    Ctrl-C stops the run where it is: what was measured is kept and summarized (exit 130).
    """
    result = {"schema": 1, "mode": "quick" if args.quick else "full", "argv": sys.argv[1:],
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parts": {}}

    def save() -> None:
        out.write_text(json.dumps(result, indent=2))

    status = 0
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
            _run_parts(args, result["parts"], save, Path(tmp))
    except KeyboardInterrupt:
        result["interrupted"] = True
        status = 130
    save()
    text = summary(result)
    out.with_suffix(".txt").write_text(text + "\n")
    print(f"\n{text}\n\nwrote {out} and {out.with_suffix('.txt')}: please send both files back")
    return status


def _run_parts(args, parts: dict, save: Callable[[], None], work: Path) -> None:
    quick, gpu = args.quick, has_gpu()
    timeout = args.timeout or (300 if quick else 900)
    ckpts = Checkpoints(args)
    frames = 8 if quick else 24

    def child(spec: dict) -> dict:
        return run_part(spec, timeout, work)

    def record(name: str, fn: Callable[[], dict]) -> None:
        start = time.perf_counter()
        try:
            parts[name] = fn()
        except Exception as e:  # one part's failure is recorded; the others still run
            parts[name] = _error(e)
        parts[name].setdefault("seconds", time.perf_counter() - start)
        save()
        print(line(name, parts[name]), flush=True)

    record("machine", lambda: {"status": "ok", **machine()})
    for name in GPU_PARTS:
        record(name, lambda n=name: child({"part": n, "checkpoint": ckpts[0], "frames": frames})
               if gpu else skipped(no_gpu_reason()))
    record("bf16_vs_float32", lambda: child({"part": "bf16_vs_float32", "checkpoint": ckpts[0],
                                             "prompts": 1 if quick else 3, "frames": frames}))
    record("xvector", lambda: child({"part": "xvector", "base_model": args.base_model, "ref_audio": args.ref_audio,
                                     "seconds": [5.0] if quick else [5.0, 30.0, 60.0]})
           if args.base_model else skipped("no Base model given (--base-model PATH)"))
    parts["bench"] = bench = {"status": "running", "runs": []}
    start = time.perf_counter()
    for i in range(len(ckpts)):
        for label, quant in QUICK_CONFIGS if quick else FULL_CONFIGS:
            try:
                run = child({"part": "bench", "model": ckpts[i], "quant": quant, "frames": 8 if quick else 50,
                             "runs": 1 if quick else 3, "floor_reps": 1 if quick else 5})
            except Exception as e:  # e.g. the random checkpoint could not be written
                run = _error(e)
            bench["runs"].append(run | {"config": label})
            save()
            print(bench_line(bench["runs"][-1]), flush=True)
    ok = [r for r in bench["runs"] if r["status"] == "ok"]
    bench |= {"status": "ok" if ok else "error", "seconds": time.perf_counter() - start}
    if not ok:
        bench["error"] = "no benchmark run succeeded"


def _e(x: float) -> str:
    return f"{x:.1e}"


def _details(name: str, p: dict) -> str:
    if name == "machine":
        gpu = p.get("gpu") or {}
        memory = f"{p['memory_bytes'] / 2**30:.0f} GiB" if p.get("memory_bytes") else "memory ?"
        return (f"{gpu.get('device_name') or p.get('chip') or '?'}, {memory}, {p.get('gpu_backend') or 'no GPU'}, "
                f"macOS {p.get('macos') or '-'}, MLX {p['mlx']}")
    if name == "codec_decoder":
        return (f"gpu vs cpu max diff: whole {_e(p['gpu_vs_cpu_whole']['max_abs_diff'])}, streamed "
                f"{_e(p['gpu_vs_cpu_streamed']['max_abs_diff'])}; streamed ms/frame cpu "
                f"{p['ms_per_frame']['cpu_streamed']:.1f}, gpu {p['ms_per_frame']['gpu_streamed']:.1f}, "
                f"gpu with the rewrites {p['ms_per_frame']['gpu_rewrites_streamed']:.1f}")
    if name == "conv1d":
        return f"{len(p['layers'])} layers, worst gpu native vs cpu {_e(p['worst_gpu_native_vs_cpu'])}"
    if name == "snake":
        return (f"fused (gpu) vs polynomial (cpu) {_e(p['gpu_fused_vs_cpu_polynomial']['max_abs_diff'])}; vs float64: "
                f"fused {_e(p['gpu_fused_vs_float64']['max_abs_diff'])}, "
                f"polynomial {_e(p['cpu_polynomial_vs_float64']['max_abs_diff'])}")
    if name == "compiled_frame":
        return "; ".join(f"{k} {'identical' if p[k]['identical'] else 'DIFFERENT'} ({p[k]['frames_lean']} frames)"
                         for k in ("greedy", "sampled"))
    if name == "bf16_vs_float32":
        t, c = p["talker"], p["code_predictor"]
        return (f"talker KL {t['kl']:.2e}, top-1 {t['top1']:.3f}; code predictor KL {c['kl']:.2e}, "
                f"top-1 {c['top1']:.3f} ({p['frames']} frames, {p['device']})")
    if name == "xvector":
        return "; ".join(f"{s:g} s: " + ", ".join(f"{k} {v:.5f}" for k, v in p[f"{s:g}s"].items())
                         for s in p["seconds"])
    return ""


def line(name: str, p: dict) -> str:
    """One part as one line: its figures, or why it was skipped or failed."""
    status = p["status"]
    if status == "skipped":
        text = p["reason"]
    elif status == "error":
        text = p.get("error")
    else:
        try:
            text = _details(name, p) or f"{len(p.get('runs', []))} runs"
        except (KeyError, TypeError) as e:
            text = f"ok (summary incomplete: {e!r})"
    return f"{name:<16} {status:<8} {text}"


def bench_line(r: dict) -> str:
    label = f"bench {r.get('config')}"
    if r["status"] != "ok":
        return f"{label:<16} {r['status']:<8} {r.get('error') or r.get('reason')}"
    m = r["median"]
    return (f"{label:<16} ok       {Path(r['model']).name} {r['size']} {r['dtype']}: cold first audio "
            f"{r['cold_first_audio_s']:.2f} s, warm {r['warm_first_audio_s']:.2f} s, frame loop "
            f"{m['talker_code_predictor_ms']:.1f} ms/frame, with decode {m['ms_per_frame']:.1f}")


def summary(result: dict) -> str:
    """The whole result as text: a line per part and per benchmark run, then each device report."""
    parts = result["parts"]
    lines = [f"mlx_qwen3tts gpu_check ({result['mode']}), started {result['started']}"
             + (", INTERRUPTED (Ctrl-C)" if result.get("interrupted") else "")]
    lines += [line(name, p) for name, p in parts.items() if name != "bench"]
    runs = parts.get("bench", {}).get("runs", [])
    lines += [bench_line(r) for r in runs]
    lines += ["", *(r["device_report_text"] for r in runs if r["status"] == "ok")]
    return "\n".join(lines).rstrip()
