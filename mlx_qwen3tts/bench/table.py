"""The benchmark's printed table: one column per stack and configuration."""

from __future__ import annotations

from ..pipeline import DEFAULT_CHUNK_FRAMES

# Printed rows: (result key, label, format).
ROWS = [
    ("frames", "frames produced", "{:.0f}"),
    ("first_chunk_s", "time to first audio chunk (s)", "{:.3f}"),
    ("rtf", "RTF, streamed (compute s / audio s)", "{:.3f}"),
    ("prefill_s", "prefill + first frame (s)", "{:.3f}"),
    ("talker_ms", "talker step (ms/frame)", "{:.1f}"),
    ("code_predictor_ms", "code predictor, 15 steps (ms/frame)", "{:.1f}"),
    ("talker_code_predictor_ms", "frame loop, steady state (ms/frame)", "{:.1f}"),
    ("kernel_floor_ms", "kernel floor (ms/frame)", "{:.1f}"),
    ("floor_ratio", "frame loop / kernel floor", "{:.3f}"),
    ("host_syncs_per_frame", "host syncs per frame", "{:.2f}"),
    ("decode_ms", f"decode, {DEFAULT_CHUNK_FRAMES[-1]}-frame steps (ms/frame)", "{:.1f}"),
    ("ms_per_frame", "total steady state (ms/frame)", "{:.1f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
]


def column_label(r: dict) -> str:
    """A result's column heading: stack, dtype, quantization, forwarder."""
    return (f"{r['stack']} {r['dtype']}" + (f" q{r['quantization']}" if r["quantization"] else "")
            + (" +fwd" if r.get("sgemv_forwarder") else ""))


def format_table(title: str, results: list[dict]) -> str:
    """One column per stack and configuration; the last row is each one's speed over the
    reference of the same dtype (reference ms/frame / its ms/frame)."""
    refs = {r["dtype"]: r["ms_per_frame"] for r in results if r["stack"] == "reference"}
    rows = [(label, [None if r.get(k) is None else fmt.format(r[k]) for r in results]) for k, label, fmt in ROWS]
    if refs:
        rows.append(("speed vs reference (x)", [f"{refs[r['dtype']] / r['ms_per_frame']:.2f}"
                                                if refs.get(r["dtype"]) and r["ms_per_frame"] else None
                                                for r in results]))
    heads = [column_label(r) for r in results]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(h), *(len(v or "n/a") for _, vals in rows for v in [vals[i]])) for i, h in enumerate(heads)]
    lines = [title, "-" * len(title), f"{'':<{width}}  " + "  ".join(f"{h:>{c}}" for h, c in zip(heads, cols))]
    for label, vals in rows:
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v or 'n/a':>{c}}" for v, c in zip(vals, cols)))
    return "\n".join(lines)
