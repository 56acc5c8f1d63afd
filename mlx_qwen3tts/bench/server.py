"""`python -m mlx_qwen3tts.bench.server`: what the server adds to the time to first audio.

    python -m mlx_qwen3tts.bench.server --make-checkpoint tiny --requests 9
    python -m mlx_qwen3tts.bench.server --make-checkpoint 0.6b --requests 5 --frames 2

In one run, on one loaded checkpoint, the same request is timed three ways, round after round:
in process (`tts.stream()` to its first chunk), over HTTP (a streamed `pcm` request to its
first body bytes, httpx), and over the WebSocket (from sending the text to the first binary
frame, `websockets`). The server runs in this process on a loopback port; the medians and
their differences (the server's overhead, in ms and in 80 ms frames) are printed. Needs the
clients of the test extra (httpx, websockets).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

TEXT = "Hello there. This is a short benchmark sentence, read out loud at an even pace."
FRAME_MS = 80.0


class BackgroundServer:
    """The server for `tts` on a free loopback port, on a thread of its own."""

    def __init__(self, tts):
        import uvicorn

        from ..server.routes import create_app
        from ..server.cli import bind
        from ..server.state import Settings

        self.app = create_app(Settings(model_id="bench"), tts)
        self._sock = bind("127.0.0.1", 0)
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def in_process(tts, options: dict) -> float:
    start = time.perf_counter()
    stream = tts.stream(TEXT, **options)
    first = None
    for _ in stream:
        first = first or time.perf_counter() - start
    return first


def over_http(client, options: dict) -> float:
    body = {"input": TEXT, "response_format": "pcm", **_fields(options)}
    start = time.perf_counter()
    first = None
    with client.stream("POST", "/v1/audio/speech", json=body) as r:
        r.raise_for_status()
        for data in r.iter_bytes():
            first = first or (time.perf_counter() - start if data else None)
    return first


def over_websocket(url: str, options: dict) -> float:
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    with connect(url, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "session.config", **_fields(options)}))
        json.loads(ws.recv(timeout=30))  # session.ready
        start = time.perf_counter()
        ws.send(json.dumps({"type": "input.text", "text": TEXT}))
        ws.send(json.dumps({"type": "input.done"}))
        first = None
        try:
            while True:
                message = ws.recv(timeout=600)
                if isinstance(message, bytes) and first is None:
                    first = time.perf_counter() - start
        except ConnectionClosedOK:
            pass
    return first


def _fields(options: dict) -> dict:
    """The request's fields for the server, the same request as `options` in process."""
    out = {k: v for k, v in options.items() if k not in ("speaker", "instruct", "non_streaming_mode")}
    out["text_layout"] = "whole" if options["non_streaming_mode"] else "streaming"
    if "speaker" in options:
        out["voice"] = options["speaker"]
    if options.get("instruct"):
        out["instructions"] = options["instruct"]
    return out


def measure(tts, requests: int = 5, frames: int = 8) -> dict:
    """Medians of the three times to first audio, same request, interleaved rounds."""
    import httpx

    # The streaming text layout (the WebSocket's default, and speak's) on all three paths.
    options = {"seed": 0, "max_new_tokens": frames + 1, "non_streaming_mode": False}
    if tts.kind == "custom_voice":
        options["speaker"] = tts.speakers[0]
    elif tts.kind == "voice_design":
        options["instruct"] = "A calm, clear adult voice."
    else:
        raise ValueError("the server benchmark needs a CustomVoice or VoiceDesign checkpoint (Base needs a voice)")
    times: dict[str, list[float]] = {"in_process": [], "http": [], "websocket": []}
    with BackgroundServer(tts) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}",
                                                       timeout=600) as client:
        url = f"ws://127.0.0.1:{server.port}/v1/audio/speech/stream"
        runs = [lambda: in_process(tts, options), lambda: over_http(client, options),
                lambda: over_websocket(url, options)]
        for run in runs:  # warm-up: compiled graphs, the first connection
            run()
        for i in range(requests):
            for name, run in zip(times, runs):
                times[name].append(run())
            logging.info("round %d/%d: %s", i + 1, requests, ", ".join(f"{k} {v[-1] * 1e3:.1f} ms"
                                                                         for k, v in times.items()))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}  # on a busy machine the floor shows the overhead best
    return {"kind": tts.kind, "size": tts.config.tts_model_size, "requests": requests, "frames": frames,
            "median_s": med, "best_s": best, "runs_s": times,
            "http_overhead_ms": (med["http"] - med["in_process"]) * 1e3,
            "websocket_overhead_ms": (med["websocket"] - med["in_process"]) * 1e3,
            "http_overhead_best_ms": (best["http"] - best["in_process"]) * 1e3,
            "websocket_overhead_best_ms": (best["websocket"] - best["in_process"]) * 1e3}


def format_report(result: dict) -> str:
    med, best = result["median_s"], result["best_s"]
    lines = [f"{result['kind']} {result['size']}: time to first audio over {result['requests']} rounds "
             f"({result['frames']} frames per request)", f"  {'':<40}{'median':>10}{'best':>10}"]
    for key, label in (("in_process", "in process (tts.stream, first chunk)"),
                       ("http", "HTTP (POST /v1/audio/speech, pcm)"), ("websocket", "WebSocket (first binary frame)")):
        lines.append(f"  {label:<40}{med[key] * 1e3:8.1f} ms{best[key] * 1e3:8.1f} ms")
    for name in ("http", "websocket"):
        ms, floor = result[f"{name}_overhead_ms"], result[f"{name}_overhead_best_ms"]
        lines.append(f"  {'server overhead, ' + name:<40}{ms:8.1f} ms{floor:8.1f} ms"
                     f"  ({ms / FRAME_MS:.2f} / {floor / FRAME_MS:.2f} frames of 80 ms)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mlx-qwen3tts-server-bench", description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint folder or Hugging Face repo id")
    source.add_argument("--make-checkpoint", choices=["tiny", "0.6b", "1.7b"],
                        help="write (once, then reuse) a random CustomVoice checkpoint of this size")
    p.add_argument("--requests", type=int, default=5, help="measured rounds, median reported (default 5)")
    p.add_argument("--frames", type=int, default=8, help="frames per request (default 8)")
    p.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.requests < 1 or args.frames < 1:
        print("error: --requests and --frames must be at least 1", file=sys.stderr)
        return 2
    import mlx_qwen3tts
    from mlx_qwen3tts.testing import make_checkpoint

    model = args.model or make_checkpoint(args.make_checkpoint, "custom_voice")
    result = measure(mlx_qwen3tts.load(str(model)), args.requests, args.frames)
    result["model"] = str(model)
    print(format_report(result))
    if args.json_out:
        Path(args.json_out).expanduser().write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # `python -m mlx_qwen3tts.bench.server`: the package's entry starts every command
    import runpy

    runpy.run_module("mlx_qwen3tts", run_name="__main__")
