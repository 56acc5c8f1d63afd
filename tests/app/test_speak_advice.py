"""`speak` prints the speed advice once when playback cannot keep up, on a line of its own.

The fake model's chunks arrive on a fake clock at a set pace, so nothing here depends on how
fast this machine is; it carries a real (lazy, never evaluated) 0.6B model for the advice.
"""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest
from test_speak import SR, FakeTTS, env  # noqa: F401  (env is the fixture these tests use)

from mlx_qwen3tts.app import cli, sinks
from mlx_qwen3tts.audio import AudioChunk
from mlx_qwen3tts.testing import model_config
from mlx_qwen3tts.config import ModelConfig
from mlx_qwen3tts.models.qwen3_tts import Model

FRAME = 1920
ADVICE = "slower than real time"


class PacedTTS(FakeTTS):
    """One-frame chunks, `ms_per_frame` apart on `clock`, for `seconds` of speech."""

    def __init__(self, clock: list[float], ms_per_frame: float, seconds: float = 4.8):
        super().__init__()
        self.model = Model(ModelConfig.from_dict(model_config("0.6b", "custom_voice")))
        self.config = self.model.config
        self.clock, self.step, self.frames = clock, ms_per_frame / 1e3, round(seconds / 0.08)

    def stream(self, text, kwargs):
        text = text if isinstance(text, str) else "".join(text)
        self.calls.append((text, kwargs))
        return self._paced()

    def _paced(self):
        self.clock[0] += 1.0  # the prompt's prefill: slow, and not part of the pace
        for i in range(self.frames):
            self.clock[0] += self.step
            yield AudioChunk(np.zeros(FRAME, np.float32), SR, i, i + 1 == self.frames, i + 1, 0.0)


@pytest.fixture
def paced(env, monkeypatch):  # noqa: F811
    """Returns a function that installs a PacedTTS of the given pace as the loaded model."""
    clock = [1000.0]
    # feed() times chunks with sinks.time.perf_counter; differences of it are the fake clock's.
    monkeypatch.setattr(sinks, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def install(ms_per_frame: float) -> PacedTTS:
        env.tts = PacedTTS(clock, ms_per_frame)
        return env.tts

    return install


def test_slow_playback_prints_the_advice_once(paced, capsys):
    paced(200.0)
    assert cli.main(["Hello there. This is a slow machine."]) == 0
    lines = capsys.readouterr().err.splitlines()
    tips = [line for line in lines if ADVICE in line]
    assert len(tips) == 1, lines
    assert tips[0].startswith("slower than real time: 200 ms per 80 ms frame, 6.64 GB")
    if mx.default_device() == mx.cpu:
        assert "float32 is the fast dtype" in tips[0]
    assert "s of speech" in lines[-1] and ADVICE not in lines[-1]  # the status line is intact


def test_on_a_terminal_the_advice_does_not_break_the_status_line(paced, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    paced(200.0)
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["Hello there. This is a slow machine."]) == 0
    out = err.getvalue()
    start = out.index(ADVICE)
    # The status line is cleared first, the advice ends its own line, the status is redrawn below.
    assert out[start - 4:start] == "\r\033[K"
    end = out.index("\n", start)
    assert out[end + 1:].startswith("\r\033[K") and "s of speech" in out[end + 1:].split("\n")[0]
    assert out.count(ADVICE) == 1


def test_fast_playback_prints_no_advice(paced, capsys):
    paced(40.0)
    assert cli.main(["Hello there. This machine keeps up."]) == 0
    err = capsys.readouterr().err
    assert ADVICE not in err and "s of speech" in err


@pytest.mark.parametrize("flags", [["-q"], ["--no-play", "-o", "{tmp}/out.wav"]])
def test_quiet_or_no_listener_prints_no_advice(paced, capsys, tmp_path, flags):
    paced(200.0)
    argv = ["Hello there. This is a slow machine."] + [f.format(tmp=tmp_path) for f in flags]
    assert cli.main(argv) == 0
    assert ADVICE not in capsys.readouterr().err


def test_text_still_arriving_prints_no_advice(paced, capsys, monkeypatch):
    # Waiting for stdin looks like slowness; the pace is not judged then.
    paced(200.0)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello there. This arrives from a pipe."))
    assert cli.main(["-"]) == 0
    assert ADVICE not in capsys.readouterr().err
