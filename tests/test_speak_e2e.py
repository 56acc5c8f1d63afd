"""`python -m mlx_qwen3tts.speak` end to end on a tiny checkpoint (no sound card needed)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import mlx_qwen3tts
from tiny import make_tiny_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv", seed=5)


def speak(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "mlx_qwen3tts.speak", *args], input=stdin,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_output_equals_generate_for_the_same_seed(folder, tmp_path):
    out = tmp_path / "hello.wav"
    run = speak("Hello world.", "--model", str(folder), "--speaker", "vivian", "--seed", "3",
                "--max-new-tokens", "40", "--output", str(out), "--no-play", "-q")
    assert run.returncode == 0, run.stderr
    written, sr = sf.read(out, dtype="float32")
    expected = mlx_qwen3tts.load(folder).generate("Hello world.", speaker="vivian", seed=3, max_new_tokens=40,
                                                  trim_silence=True)
    assert sr == 24000 and len(written) == len(expected.samples) > 0
    np.testing.assert_allclose(written, expected.samples, atol=1 / 16384)  # 16-bit WAV


def test_stdin_text_and_one_line_errors(folder, tmp_path):
    out = tmp_path / "stdin.flac"
    run = speak("-", "--model", str(folder), "--speaker", "eric", "--max-new-tokens", "6",
                "--output", str(out), "--no-play", "-q", stdin="Read from stdin.")
    assert run.returncode == 0, run.stderr
    assert sf.info(out).frames > 0
    bad = speak("Hi.", "--model", str(folder), "--speaker", "nobody", "--no-play", "--output", str(out))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: unknown speaker 'nobody'")
    assert "Traceback" not in bad.stderr
