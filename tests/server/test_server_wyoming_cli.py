"""`python -m mlx_qwen3tts serve --wyoming` as a user starts it, and the addresses it refuses."""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("wyoming", reason="the Wyoming tests need the test extra: pip install -e '.[test]'")

from mlx_qwen3tts.server.wyoming_listen import listen, parse_uri  # noqa: E402
from serving import speaking_checkpoint  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.tts import Synthesize, SynthesizeVoice  # noqa: E402
from wyoming_client import Wyoming, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VIVIAN = SynthesizeVoice(name="vivian")


def test_serve_with_wyoming_from_the_command_line(tmp_path):
    checkpoint = speaking_checkpoint(tmp_path / "cv")
    proc = subprocess.Popen([sys.executable, "-m", "mlx_qwen3tts", "serve", "--model", str(checkpoint), "--port", "0",
                             "--wyoming", "tcp://127.0.0.1:0"], cwd=ROOT, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()

    seen: list[str] = []  # every line so far: the two awaited lines may come in either order

    def wait_line(pattern: str) -> re.Match:
        deadline = time.monotonic() + 60
        while True:
            if match := next(filter(None, (re.search(pattern, line) for line in seen)), None):
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within 60 s; got:\n{''.join(seen)}")
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.1))

    async def go(port: int):
        async with Wyoming(port) as w:
            await w.send(Describe())
            info = Info.from_event(await w.next())
            await w.send(Synthesize("Hi there.", voice=VIVIAN))
            return info, await w.until("audio-start")  # and leaves mid-reply

    try:
        port = int(wait_line(r"Wyoming on tcp://127\.0\.0\.1:(\d+)").group(1))
        wait_line(r"ready: ")
        info, started = run(go(port))
        assert [v.name for v in info.tts[0].voices] == ["eric", "vivian"] and started[-1].type == "audio-start"
    finally:
        proc.send_signal(signal.SIGINT)
        # uvicorn shuts down (the Wyoming server with it), then ends with the signal, as Ctrl-C does.
        assert proc.wait(30) == -signal.SIGINT
    time.sleep(0.2)  # the reader thread drains what was left
    rest = "".join(lines.get() for _ in range(lines.qsize()))
    assert " ERROR " not in rest, rest  # a client that left is no error


def test_wyoming_beyond_loopback_needs_allow_no_auth_and_a_tcp_uri(capsys):
    from mlx_qwen3tts.server import cli

    assert cli.main(["--model", "unused", "--port", "0", "--wyoming", "tcp://0.0.0.0:0"]) == 2
    assert "no authentication" in capsys.readouterr().err
    assert cli.main(["--model", "unused", "--port", "0", "--wyoming", "10200"]) == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no authentication"):
        listen("tcp://192.168.1.5:10200", allow_no_auth=False)
    assert parse_uri("tcp://[::1]:10200") == ("::1", 10200)
    listen("tcp://0.0.0.0:0", allow_no_auth=True).close()
