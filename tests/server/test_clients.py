"""Voice-agent frameworks with their own defaults against a real server: pipecat's
`OpenAITTSService` and LiveKit's `openai.TTS`, each run from a venv of its own (client_venvs.py)
as a user's program would. Marked `clients`: not in the default run.

    python -m pytest -q -m clients tests/server/test_clients.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from client_venvs import client_venv
from mlx_qwen3tts.guards import GUARD_REASONS
from serving import LiveServer
from serving import tts  # noqa: F401  (fixture)

pytestmark = pytest.mark.clients

SCRIPTS = Path(__file__).resolve().parents[1] / "clients"
TEXT = "Hello there. This is a test."
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def server(tts):
    with LiveServer(tts) as live:
        yield live


def run_client(name: str, server: LiveServer, options: dict | None = None) -> dict:
    python = client_venv(name)
    done = subprocess.run([str(python), str(SCRIPTS / f"{name}_speak.py"), f"{server.url}/v1", TEXT,
                           json.dumps(options or {})], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def last_speech(server: LiveServer):
    return [r for r in server.state.records if r.kind == "speech"][-1]


def test_pipecat_openai_tts_with_its_defaults(server):
    # Its defaults: voice alloy (only OpenAI's 13 names pass its own check), gpt-4o-mini-tts, pcm.
    result = run_client("pipecat", server)
    assert result["errors"] == [] and result["frames"] > 0
    assert result["rates"] == [24000] and result["channels"] == [1]
    record = last_speech(server)
    # The client sends no seed: the tiny random model may stop at EOS or run to its frame budget.
    assert record.finish_reason in ("eos", "max_new_tokens", *GUARD_REASONS) and record.format == "pcm"
    assert result["bytes"] == round(record.audio_seconds * 24000) * 2  # every sample, as 16-bit mono


def test_pipecat_with_speed(server):
    result = run_client("pipecat", server, {"voice": "nova", "speed": 1.5})
    assert result["errors"] == [] and result["bytes"] == round(last_speech(server).audio_seconds * 24000) * 2


@pytest.mark.parametrize("options", [{}, {"response_format": "pcm"}, {"response_format": "aac"},
                                     {"model": "tts-1", "response_format": "wav", "speed": 1.25}],
                         ids=["defaults", "pcm", "aac", "tts-1-wav-speed"])
def test_livekit_openai_tts(server, options):
    # Its defaults: voice ash, gpt-4o-mini-tts, mp3, speed 1.0 always sent, SSE for this model name.
    result = run_client("livekit", server, options)
    assert result["error"] is None and result["frames"] > 0
    assert result["rates"] == [24000] and result["channels"] == [1]
    record = last_speech(server)
    expected = round(record.audio_seconds * 24000)
    if options.get("response_format") in ("pcm", "wav"):  # every sample, in 10 ms frames (the last one padded)
        assert expected <= result["samples"] <= expected + 240
    else:  # LiveKit's decoder trims a compressed stream's edges by a few frames
        assert abs(result["samples"] - expected) < 0.05 * expected + 4096
