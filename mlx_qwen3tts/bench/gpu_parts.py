"""The measurements `gpu_check` makes, one function each, every one returning a JSON-ready dict.

The device parts compare a GPU branch with its CPU counterpart. `on(device, native=...)` picks
the device and, separately, the codec's branch (native conv ops and fused SnakeBeta, or the
CPU rewrites), so each branch can also run on the other device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import mlx.core as mx
import numpy as np

from ..audio import SAMPLE_RATE
from ..codec import conv, load_speech_decoder
from ..codec.blocks import _snake_cpu, _snake_fused
from ..codec.conv import CausalConv1d, CausalConvTranspose1d
from ..pipeline import chunk_schedule


@contextmanager
def on(device: mx.Device, native: bool | None = None) -> Iterator[None]:
    """Runs on `device`; `native` forces the codec's GPU branch (True) or its CPU rewrites (False)."""
    old, selector = mx.default_device(), conv._on_cpu
    mx.set_default_device(device)
    if native is not None:
        conv._on_cpu = lambda: not native  # blocks.py reads it through the module too
    try:
        yield
    finally:
        conv._on_cpu = selector
        mx.set_default_device(old)


def _device() -> str:
    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def diff(test, ref) -> dict[str, float]:
    """Largest absolute difference, and the reference's largest magnitude for scale."""
    a, b = np.asarray(test, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return {"max_abs_diff": float(np.abs(a - b).max()), "ref_max_abs": float(np.abs(b).max())}


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """`fn()` after one warm-up call (kernel compilation), with the seconds the second call took."""
    fn()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def codec_decoder(checkpoint: str, gpu: mx.Device, frames: int) -> dict:
    """The decoder, whole clip and streamed in the app's chunk sizes: GPU branch on the GPU,
    the CPU rewrites on the CPU, and the rewrites on the GPU (a mixed variant), with ms/frame."""
    decoder = load_speech_decoder(Path(checkpoint) / "speech_tokenizer")
    rng = np.random.default_rng(0)
    codes = mx.array(rng.integers(0, decoder.config.codebook_size, (1, frames, 16)), dtype=mx.int32)

    def whole() -> np.ndarray:
        return np.asarray(decoder(codes))

    def streamed() -> np.ndarray:
        decoder.reset_state()
        out, i = [], 0
        for n in chunk_schedule((1, 2, 4, 8)):
            if i >= frames:
                break
            out.append(np.asarray(decoder.step(codes[:, i:i + n])))
            i += n
        decoder.reset_state()
        return np.concatenate(out, axis=1)

    runs, ms = {}, {}
    for name, device, native in (("cpu", mx.cpu, False), ("gpu", gpu, True), ("gpu_rewrites", gpu, False)):
        with on(device, native):
            for mode, fn in (("whole", whole), ("streamed", streamed)):
                runs[name, mode], seconds = _timed(fn)
                ms[f"{name}_{mode}"] = seconds * 1e3 / frames
    return {"frames": frames, "gpu_vs_cpu_whole": diff(runs["gpu", "whole"], runs["cpu", "whole"]),
            "gpu_vs_cpu_streamed": diff(runs["gpu", "streamed"], runs["cpu", "streamed"]),
            "gpu_streamed_vs_whole": diff(runs["gpu", "streamed"], runs["gpu", "whole"]),
            "gpu_rewrites_vs_gpu_whole": diff(runs["gpu_rewrites", "whole"], runs["gpu", "whole"]),
            "ms_per_frame": ms}


def _cpu_branch(w: mx.array, dilation: int, groups: int, channels: int) -> str:
    """Which form `conv.conv1d` takes on the CPU for this layer (mirrors its test)."""
    c_out, k, _ = w.shape
    if groups == 1 and (dilation > 1 or k == 1 or c_out < 8):
        return "taps"
    if groups > 1 and groups == channels == c_out and w.shape[-1] == 1:
        return "depthwise"
    return "native"


def conv1d(checkpoint: str, gpu: mx.Device, length: int = 48) -> dict:
    """Every distinct conv of the decoder on random input: the native op on the GPU against what
    the CPU runs (`conv.conv1d`), and against the same rewrites run on the GPU."""
    decoder = load_speech_decoder(Path(checkpoint) / "speech_tokenizer")
    seen, rows = set(), []
    for _, m in decoder.named_modules():
        if isinstance(m, CausalConv1d):
            w, key, span = m.conv.weight, ("conv1d", m.conv.weight.shape, m.stride, m.dilation, m.groups), m.span
        elif isinstance(m, CausalConvTranspose1d):
            w, key, span = m.conv.weight, ("conv_transpose1d", m.conv.weight.shape, m.stride, 1, 1), 1
        else:
            continue
        if key in seen:
            continue
        seen.add(key)
        kind, shape, stride, dilation, groups = key
        channels = shape[-1] * groups
        shape_in = (1, span - 1 + length, channels)  # `length` output frames, whatever the dilation
        x = mx.array(np.random.default_rng(len(rows)).standard_normal(shape_in), dtype=w.dtype)
        if kind == "conv1d":
            native = partial(mx.conv1d, stride=stride, dilation=dilation, groups=groups)
            ours = partial(conv.conv1d, stride=stride, dilation=dilation, groups=groups)
            branch = _cpu_branch(w, dilation, groups, channels)
        else:
            native = partial(mx.conv_transpose1d, stride=stride)
            ours = partial(conv.conv_transpose1d_matmul, stride=stride)
            branch = "matmul"
        with on(gpu, native=True):
            gpu_native = np.asarray(native(x, w))
        with on(gpu, native=False):  # the CPU's form of this layer, run on the GPU
            gpu_rewrite = np.asarray(ours(x, w))
        with on(mx.cpu, native=False):
            cpu = np.asarray(ours(x, w))
        rows.append({"kind": kind, "weight_shape": list(shape), "stride": stride, "dilation": dilation,
                     "groups": groups, "cpu_branch": branch, "gpu_native_vs_cpu": diff(gpu_native, cpu),
                     "gpu_rewrite_vs_gpu_native": diff(gpu_rewrite, gpu_native) if branch != "native" else None})
    worst = max(r["gpu_native_vs_cpu"]["max_abs_diff"] for r in rows)
    return {"layers": rows, "worst_gpu_native_vs_cpu": worst}


def snake(gpu: mx.Device) -> dict:
    """SnakeBeta: the fused `mx.sin` graph on the GPU, the polynomial on the CPU, both against
    float64 numpy, over arguments up to about |x * exp(alpha)| = 100."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((1, 512, 96)) * 12).astype(np.float32)
    alpha, beta = (rng.standard_normal((2, 96)) * 0.5).astype(np.float32)
    x64, a64, b64 = (v.astype(np.float64) for v in (x, alpha, beta))
    ref = x64 + np.sin(x64 * np.exp(a64)) ** 2 / (np.exp(b64) + 1e-9)
    args = [mx.array(v) for v in (x, alpha, beta)]
    with on(gpu):
        fused = np.asarray(_snake_fused(*args))
    with on(mx.cpu):
        poly = np.asarray(_snake_cpu(*args))
    return {"max_argument": float(np.abs(x64 * np.exp(a64)).max()), "gpu_fused_vs_cpu_polynomial": diff(fused, poly),
            "gpu_fused_vs_float64": diff(fused, ref), "cpu_polynomial_vs_float64": diff(poly, ref)}


def compiled_frame(checkpoint: str, frames: int) -> dict:
    """The lean loop (compiled code-predictor frame) against the plain loop on the default
    device, greedy and sampled: the codes must be identical."""
    from ..generation import generate_frames
    from ..loading import load
    from .one_stream import DEFAULT_TEXT, request_kwargs

    tts = load(checkpoint)
    out = {"device": _device(), "dtype": str(tts.model.talker.codec_head.weight.dtype).removeprefix("mlx.core.")}
    greedy = request_kwargs(tts, frames)
    sampled = greedy | {"temperature": 0.9, "subtalker_temperature": 0.9, "top_k": 50, "subtalker_top_k": 50}
    for name, kwargs in (("greedy", greedy), ("sampled", sampled)):
        codes = []
        for compiled in (True, False):
            p = tts.prepare(DEFAULT_TEXT, **kwargs)
            rows = [np.asarray(f) for f, _ in generate_frames(tts.model.talker, p.prompt, p.sampling, p.seed, compiled)]
            codes.append(np.stack(rows) if rows else np.zeros((0, 16), np.int32))
        lean, plain = codes
        n = min(len(lean), len(plain))
        differ = np.flatnonzero((lean[:n] != plain[:n]).any(axis=1))
        out[name] = {"frames_lean": len(lean), "frames_plain": len(plain), "identical": bool(
            len(lean) == len(plain) and not differ.size), "first_differing_frame": int(differ[0]) if differ.size else None}
    return out


def bf16_vs_float32(checkpoint: str, prompts: int, frames: int) -> dict:
    """bfloat16 against float32 on the default device: talker and code-predictor KL and top-1
    agreement, teacher-forced on the float32 model's greedy frames (see quality.py)."""
    import gc

    from ..loading import load
    from ..quality import (
        PROMPTS,
        _request_kwargs,
        compare,
        greedy_frames,
        teacher_forced,
    )

    ref = load(checkpoint, dtype="float32")
    kwargs = _request_kwargs(ref)
    runs = []
    for text in PROMPTS[:prompts]:
        prompt = ref.prepare(text, **kwargs).prompt
        codes = greedy_frames(ref, prompt, frames)
        talker, cp = teacher_forced(ref, prompt, codes)
        mx.eval(talker, cp)
        runs.append((text, codes, talker, cp))
    del ref
    gc.collect()
    test = load(checkpoint, dtype="bfloat16")
    talker, cp = [], []
    for text, codes, a_talker, a_cp in runs:
        b_talker, b_cp = teacher_forced(test, test.prepare(text, **kwargs).prompt, codes)
        talker.append(compare(a_talker, b_talker))
        cp.append(compare(a_cp, b_cp))

    def mean(rows: list[dict]) -> dict:
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    return {"device": _device(), "prompts": prompts, "frames": frames * prompts,
            "talker": mean(talker), "code_predictor": mean(cp)}


def _voice_clip(seconds: float, ref_audio: str | None) -> np.ndarray:
    """`seconds` of the reference recording (looped if short), or a fixed voiced synthetic signal."""
    if ref_audio:
        from ..audio_io import load_audio

        wav = load_audio(ref_audio)
        return np.resize(wav, int(seconds * SAMPLE_RATE)).astype(np.float32)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * wav + 0.005 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)


def xvector(base_model: str, ref_audio: str | None, gpu: mx.Device | None, seconds: list[float]) -> dict:
    """x-vector cosine: float32 on the GPU vs on the CPU, and a bfloat16 load vs float32."""
    import gc

    from ..loading import load

    clips = {s: _voice_clip(s, ref_audio) for s in seconds}
    devices = [("cpu", mx.cpu)] + ([("gpu", gpu)] if gpu is not None else [])
    vectors = {}
    for dtype in ("float32", "bfloat16"):
        tts = load(base_model, dtype=dtype)
        for name, device in devices:
            with on(device):
                vectors.update({(dtype, name, s): np.asarray(tts.model.speaker_encoder.x_vector(w).astype(mx.float32))
                                for s, w in clips.items()})
        del tts
        gc.collect()

    def cos(a, b) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    main = devices[-1][0]
    out = {"source": ref_audio or "synthetic", "seconds": seconds, "device": main}
    for s in seconds:
        row = {"bfloat16_vs_float32": cos(vectors["bfloat16", main, s], vectors["float32", main, s])}
        if gpu is not None:
            row["gpu_vs_cpu_float32"] = cos(vectors["float32", "gpu", s], vectors["float32", "cpu", s])
        out[f"{s:g}s"] = row
    return out
