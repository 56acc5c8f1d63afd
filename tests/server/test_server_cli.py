"""`python -m mlx_qwen3tts serve` as a user starts it: listens at once, loads, answers with the
key from the environment; refuses an open address without a key; exits when the model fails."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

import mlx_qwen3tts
from mlx_qwen3tts.server.cli import check_exposure, is_loopback
from serving import TEXT, decode, speaking_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, env: dict | None = None, sigint_ignored: bool = False) -> tuple[subprocess.Popen, queue.Queue]:
    # sigint_ignored: started as a script's background job is (`serve &` in sh inherits SIGINT ignored).
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen([sys.executable, "-m", "mlx_qwen3tts", "serve", *args], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=ignore)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    return proc, lines


def wait_line(lines: queue.Queue, pattern: str, timeout: float = 60) -> re.Match:
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got:\n{''.join(seen)}")


def test_serve_listens_loads_and_answers_with_the_key_from_the_environment(tmp_path):
    checkpoint = speaking_checkpoint(tmp_path / "cv")
    expected = mlx_qwen3tts.load(checkpoint).generate(TEXT, speaker="vivian", seed=2, max_new_tokens=5).samples
    proc, lines = serve("--model", str(checkpoint), "--port", "0",
                        env={**os.environ, "MLX_QWEN3TTS_API_KEY": "k3y"})
    try:
        url = wait_line(lines, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        key = {"Authorization": "Bearer k3y"}
        deadline = time.monotonic() + 60
        # A busy machine can hold a health check past httpx's 5 s default while the model loads.
        while (health := httpx.get(f"{url}/health", headers=key, timeout=60)).status_code != 200:
            assert health.status_code == 503 and health.json()["status"] == "loading"
            assert time.monotonic() < deadline, "the model did not load within 60 s"
            time.sleep(0.05)
        assert httpx.get(f"{url}/health", timeout=60).status_code == 401
        r = httpx.post(f"{url}/v1/audio/speech", headers=key, timeout=60, json={
            "model": "cv", "input": TEXT, "voice": "vivian", "response_format": "pcm", "seed": 2, "max_new_tokens": 5})
        assert r.status_code == 200
        np.testing.assert_allclose(decode(r.content, "pcm"), expected, atol=1 / 32768 + 1e-6)
        wait_line(lines, rf"speech id={r.headers['x-request-id']} chars={len(TEXT)} audio=0\.32s ttfb=\d")
    finally:
        proc.send_signal(signal.SIGINT)
        # uvicorn shuts down, then ends the process with the signal, as a shell expects of Ctrl-C.
        assert proc.wait(30) == -signal.SIGINT
    wait_line(lines, "Finished server process")


def test_serve_started_with_sigint_ignored_still_ends_by_it(tmp_path):
    proc, lines = serve("--model", str(speaking_checkpoint(tmp_path / "cv")), "--port", "0", sigint_ignored=True)
    try:
        url = wait_line(lines, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/health", timeout=60).status_code != 200:
            assert time.monotonic() < deadline, "the model did not load within 60 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == -signal.SIGINT
    wait_line(lines, "Finished server process")


def test_ctrl_c_while_the_model_loads_ends_by_sigint_without_a_traceback(tmp_path):
    proc, lines = serve("--model", str(speaking_checkpoint(tmp_path / "cv")), "--port", "0")
    try:
        wait_line(lines, r"listening on http://")
        wait_line(lines, r"Application startup complete")  # uvicorn has taken SIGINT over
    finally:
        proc.send_signal(signal.SIGINT)  # the model is (most likely) still loading on its own thread
        assert proc.wait(30) == -signal.SIGINT
    wait_line(lines, "Finished server process")
    rest = []
    while True:  # the process has ended: what is left in its pipe arrives at once
        try:
            rest.append(lines.get(timeout=2))
        except queue.Empty:
            break
    assert "Traceback" not in "".join(rest)


def test_serve_refuses_an_open_address_without_a_key():
    proc, lines = serve("--host", "0.0.0.0", "--model", "unused")
    assert proc.wait(60) == 2
    wait_line(lines, "listening on 0.0.0.0 without an API key lets anyone who can reach it use this server: "
                     "pass --api-key KEY")


def test_exposure_rules(caplog):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert check_exposure("127.0.0.1", None, False) is None and check_exposure("0.0.0.0", "key", False) is None
    assert "--allow-no-auth" in check_exposure("0.0.0.0", None, False)
    with caplog.at_level(logging.WARNING, "mlx_qwen3tts.server"):
        assert check_exposure("0.0.0.0", None, True) is None
    assert "WITHOUT an API key" in caplog.text


def test_serve_exits_when_the_model_cannot_load(tmp_path):
    proc, lines = serve("--model", str(tmp_path), "--port", "0")  # a folder, but no checkpoint
    assert proc.wait(60) == 1
    wait_line(lines, r"cannot load .*config\.json")


def test_the_server_benchmark_times_all_three_paths(tmp_path):
    # The benchmark as its users run it, through the package's entry.
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "mlx_qwen3tts.bench.server", "--model", str(speaking_checkpoint(tmp_path / "cv")),
                          "--requests", "2", "--frames", "2", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {k: len(v) for k, v in result["runs_s"].items()} == {"in_process": 2, "http": 2, "websocket": 2}
    assert all(0 < t < 60 for runs in result["runs_s"].values() for t in runs)
    assert "server overhead, http" in run.stdout and "frames of 80 ms" in run.stdout