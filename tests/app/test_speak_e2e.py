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
    # speak reads text in the streaming-text layout (--text-layout streaming).
    expected = mlx_qwen3tts.load(folder).generate("Hello world.", speaker="vivian", seed=3, max_new_tokens=40,
                                                  trim_silence=True, non_streaming_mode=False)
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


def test_piped_text_is_spoken_before_the_writer_finishes(folder, tmp_path):
    """An LLM-like writer: speech must start while the pipe is still open, and the result must
    be what the whole text gives. (The tiny model is too quiet for the silence trim, which
    would hold its audio back: --keep-silence.)"""
    import threading
    import time

    out = tmp_path / "live.wav"
    words = "Hello world, this is text that arrives a few words at a time. And then some more.".split(" ")
    proc = subprocess.Popen([sys.executable, "-m", "mlx_qwen3tts.speak", "-", "--model", str(folder),
                             "--speaker", "vivian", "--seed", "3", "--max-new-tokens", "30",
                             "--output", str(out), "--no-play", "-v", "--keep-silence"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    first_audio = threading.Event()
    lines = []

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "first audio" in line:
                first_audio.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        for word in words[:4]:
            proc.stdin.write(word + " ")
            proc.stdin.flush()
        # The rest is held back until speech has started: a speak that waited for the end of its
        # input would never start.
        assert first_audio.wait(120), "".join(lines)
        for i, word in enumerate(words[4:]):
            proc.stdin.write(word + ("" if i == len(words) - 5 else " "))
            proc.stdin.flush()
            time.sleep(0.01)
        proc.stdin.close()
        assert proc.wait(timeout=300) == 0, "".join(lines)
    finally:
        proc.kill()
    reader.join(5)
    written, _ = sf.read(out, dtype="float32")
    expected = mlx_qwen3tts.load(folder).generate(" ".join(words), speaker="vivian", seed=3, max_new_tokens=30,
                                                  non_streaming_mode=False)
    assert len(written) == len(expected.samples) > 0
    np.testing.assert_allclose(written, expected.samples, atol=1 / 16384)
