"""`python -m mlx_qwen3tts.bench.wyoming`: the native Wyoming server against the
wyoming-openai proxy route, timed by `wyoming-bench` in one run.

    python -m mlx_qwen3tts.bench.wyoming --make-checkpoint tiny
    python -m mlx_qwen3tts.bench.wyoming --make-checkpoint 0.6b --rounds 1 --frames 12

The server (HTTP and `--wyoming`, one model) runs in this process; Home Assistant's older route,
wyoming-openai 0.8.0 in front of the same server's HTTP API (one request per sentence,
`--tts-voices` our presets), runs beside it. `wyoming-bench tts` then measures both, side by
side, in both modes: time to first audio (TTFT) and RTF (total time / audio time). Every request
of both routes gets the same seed and frame budget (`--frames` per request, the proxy's by its
extra body), so a random checkpoint's runs stay short. Both tools need Python >= 3.12: they go
into a venv of their own, made on first use with `--python` (default: python3.12 on PATH or
pyenv's). The proxy and the server are stopped at the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TOOLS = ("wyoming-bench==2026.10.0", "wyoming-openai==0.8.0")
DEFAULT_VENV = Path("~/.cache/mlx-qwen3tts/wyoming-bench-venv").expanduser()


def find_python312() -> str | None:
    found = shutil.which("python3.12") or shutil.which("python3.13")
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    return found or (pyenv[-1] if pyenv else None)


def tools_venv(venv: Path, python: str | None) -> Path:
    """The venv holding wyoming-bench and wyoming-openai (made, or completed, now if needed)."""
    ready = (venv / "bin" / "wyoming-bench").exists() and subprocess.run(
        [venv / "bin" / "python", "-c", "import wyoming_openai"], capture_output=True).returncode == 0
    if ready:
        return venv
    python = python or find_python312()
    if python is None:
        raise SystemExit("error: wyoming-bench and wyoming-openai need Python >= 3.12: pass --python PATH")
    print(f"making {venv} with {python} for {', '.join(TOOLS)}", file=sys.stderr)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", *TOOLS], check=True)
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: {what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"error: {what} did not listen on {port} within {timeout:g} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlx_qwen3tts.bench.wyoming", description=__doc__.split("\n")[0])
    p.add_argument("--model", help="checkpoint folder or repo id")
    p.add_argument("--make-checkpoint", choices=["tiny", "0.6b", "1.7b"], help="a random checkpoint of this size")
    p.add_argument("--voice", help="voice to ask for (default: the model's first)")
    p.add_argument("--frames", type=int, default=40, help="frame budget of every request (default 40: 3.2 s)")
    p.add_argument("--mode", choices=["both", "non_streaming", "streaming"], default="both",
                   help="synthesize, streamed text, or both (default)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per text and mode (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per mode (default 1)")
    p.add_argument("--texts", nargs="+", help="texts to speak (default: wyoming-bench's own four)")
    p.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed pieces (default 0)")
    p.add_argument("--timeout", type=float, default=120, help="wyoming-bench's per-event timeout (default 120)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"the tools' venv (default {DEFAULT_VENV})")
    p.add_argument("--python", help="Python >= 3.12 to make that venv with")
    args = p.parse_args(argv)
    if not args.model and not args.make_checkpoint:
        p.error("pass --model or --make-checkpoint")
    if args.frames < 1 or args.rounds < 1 or args.warmup < 0:
        p.error("--frames and --rounds must be at least 1, --warmup 0 or more")
    venv = tools_venv(args.venv, args.python)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the server and the proxy are stopped then too
    import mlx_qwen3tts
    from mlx_qwen3tts.testing import make_checkpoint

    from .server import BackgroundServer
    from ..server.cli import bind
    from ..server.wyoming_listen import attach

    model = args.model or str(make_checkpoint(args.make_checkpoint, "custom_voice"))
    tts = mlx_qwen3tts.load(model)
    limits = {"seed": 0, "max_new_tokens": args.frames}
    http = BackgroundServer(tts)
    native = attach(http.app, bind("127.0.0.1", 0), limits).port
    voice = args.voice or (tts.speakers or ["default"])[0]
    proxied = free_port()
    with http:
        presets = [v["id"] for v in http.app.state.server.registry.listing()] or [voice]
        # Home Assistant's route before a native server: the proxy, one speech request per sentence.
        proxy = subprocess.Popen([venv / "bin" / "python", "-m", "wyoming_openai", "--uri",
                                  f"tcp://127.0.0.1:{proxied}", "--languages", "en", "--tts-openai-url",
                                  f"http://127.0.0.1:{http.port}/v1", "--tts-openai-key", "unused", "--tts-backend",
                                  "OPENAI", "--tts-models", "tts-1", "--tts-streaming-models", "tts-1",
                                  "--tts-voices", *presets, "--tts-extra-body", json.dumps(limits)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(proxied, proxy, "wyoming-openai")
            print(f"model {model} ({tts.kind}), voice {voice}, seed 0, at most {args.frames} frames per request: "
                  f"native Wyoming 127.0.0.1:{native}, wyoming-openai 0.8.0 -> HTTP 127.0.0.1:{proxied}", flush=True)
            command = [venv / "bin" / "wyoming-bench", "tts", f"127.0.0.1:{native}", f"127.0.0.1:{proxied}",
                       "--mode", args.mode, "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--config",
                       json.dumps({"voice": voice}), "--chunk-delay", str(args.chunk_delay), "--timeout",
                       str(args.timeout)]
            if args.texts:
                command += ["--texts", *args.texts]
            return subprocess.run(command).returncode
        finally:
            stop(proxy)


if __name__ == "__main__":  # `python -m mlx_qwen3tts.bench.wyoming`: the package's entry starts it
    import runpy

    runpy.run_module("mlx_qwen3tts", run_name="__main__")
