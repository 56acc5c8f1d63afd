"""The `speak` command with a fake model and a fake player: input, flags, output files, Ctrl-C, errors.

The fake TTS stands in for the model only; what is tested is the command around it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mlx_qwen3tts.app import cli
from mlx_qwen3tts.app.device import NoOutputDevice
from mlx_qwen3tts.audio import AudioChunk
from mlx_qwen3tts.options import speech_options

SR = 24000
CHUNK = 1920


def speech(text: str) -> np.ndarray:
    """Deterministic fake speech: a tone whose pitch and length depend on the text."""
    n = CHUNK * (2 + len(text) % 5) + 500
    t = np.arange(n)
    return (0.4 * np.sin(2 * np.pi * (150 + 10 * len(text)) * t / SR)).astype(np.float32)


class FakeVoice:
    def __init__(self, ref_audio, ref_text, x_vector_only):
        self.args = (ref_audio, ref_text, x_vector_only)

    def save(self, path):
        with open(path, "w") as f:
            f.write("voice")


class FakeTTS:
    kind = "custom_voice"
    speakers = ["ryan", "vivian"]
    languages = ["auto", "english", "chinese"]
    sample_rate = SR

    def __init__(self, interrupt_at: tuple[int, int] | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.interrupt_at = interrupt_at  # (sentence, chunk) at which Ctrl-C "arrives"
        self.produced: list[np.ndarray] = []
        self.closed = 0

    def clone_voice(self, ref_audio, ref_text=None, *, x_vector_only=False):
        return FakeVoice(ref_audio, ref_text, x_vector_only)

    def options(self, **kwargs):
        """The library's own checks of every value (the voice is a stand-in), then the keywords as given."""
        speech_options(**{k: v for k, v in kwargs.items() if k != "voice"})
        if kwargs.get("speaker") not in self.speakers:
            raise ValueError(f"unknown speaker {kwargs.get('speaker')!r}; choose one of: ryan, vivian")
        return kwargs

    def stream(self, text, kwargs=None, /, **more):
        kwargs = self.options(**more) if kwargs is None else kwargs
        text = text if isinstance(text, str) else "".join(text)  # live input: its pieces joined
        self.calls.append((text, kwargs))
        return self._chunks(len(self.calls) - 1, speech(text))

    def _chunks(self, sentence, x):
        try:
            for i, pos in enumerate(range(0, x.size, CHUNK)):
                if self.interrupt_at == (sentence, i):
                    raise KeyboardInterrupt
                piece = x[pos : pos + CHUNK]
                self.produced.append(piece)
                yield AudioChunk(piece, SR, i, pos + CHUNK >= x.size, i + 1, 0.0)
        finally:
            self.closed += 1


class FakePlayer:
    def __init__(self):
        self.written: list[np.ndarray] = []
        self.events: list[str] = []
        self.expected: list[float] = []
        self.underruns = 0
        self.started_at = None

    def expect(self, seconds):
        self.expected.append(seconds)

    def write(self, samples):
        self.written.append(np.array(samples))

    def finish(self):
        self.events.append("finish")

    def drain(self, timeout=None):
        self.events.append("drain")
        return True

    def stop(self):
        self.events.append("stop")

    def close(self):
        self.events.append("close")


@pytest.fixture
def env(monkeypatch):
    """Fake model, fake player, a working device; returns a namespace to inspect and adjust."""

    class Env:
        tts = FakeTTS()
        players: list[FakePlayer] = []
        loaded: list[str] = []
        device_error: str | None = None

    e = Env()

    def load_model(name):
        e.loaded.append(name)
        return e.tts

    def open_player(sample_rate, device):
        assert sample_rate == SR
        e.players.append(FakePlayer())
        return e.players[-1]

    def check_output_device(device=None):
        if e.device_error:
            raise NoOutputDevice(e.device_error)
        return "fake"

    monkeypatch.setattr(cli, "load_model", load_model)
    monkeypatch.setattr(cli, "open_player", open_player)
    monkeypatch.setattr(cli, "check_output_device", check_output_device)
    monkeypatch.delenv(cli.MODEL_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return e


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_output_wav_without_playing(env, tmp_path):
    out = tmp_path / "hello.wav"
    assert cli.main(["Hello there. How are you today?", "--no-play", "-o", str(out), "-q"]) == 0
    # One generation context for the whole text: the model segments it, not the command.
    assert [text for text, _ in env.tts.calls] == ["Hello there. How are you today?"]
    assert env.players == []
    samples, sr = sf.read(out, dtype="float32")
    assert sr == SR
    expected = speech("Hello there. How are you today?")
    np.testing.assert_allclose(samples, expected, atol=1 / 32767 + 1e-6)  # 16-bit WAV


def test_flac_output(env, tmp_path):
    out = tmp_path / "hello.flac"
    assert cli.main(["Hi.", "--no-play", "--output", str(out), "-q"]) == 0
    samples, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(samples, speech("Hi."), atol=1e-4)


def test_all_sentences_go_to_one_player(env):
    text = "First sentence here. Second one! And a third?"
    assert cli.main([text, "-q"]) == 0
    assert len(env.players) == 1
    player = env.players[0]
    np.testing.assert_array_equal(np.concatenate(player.written), np.concatenate(env.tts.produced))
    assert player.events == ["finish", "drain", "close"]
    assert len(player.expected) == 1 and player.expected[0] > 0
    assert env.tts.closed == 1


def test_flags_reach_the_model(env, tmp_path):
    argv = ["Hello.", "--speaker", "Vivian", "--language", "english", "--instruct", "calm",
            "--temperature", "0.7", "--top-k", "20", "--top-p", "0.8", "--repetition-penalty", "1.1",
            "--max-new-tokens", "300", "--seed", "7", "-q"]
    assert cli.main(argv) == 0
    (_, kwargs), = env.tts.calls
    assert kwargs == {"speaker": "vivian", "language": "english", "instruct": "calm", "temperature": 0.7,
                      "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.1, "max_new_tokens": 300, "seed": 7,
                      "trim_silence": True, "text_layout": "streaming"}
    env.tts.calls.clear()
    assert cli.main(["Hello.", "--keep-silence", "-q"]) == 0
    assert "trim_silence" not in env.tts.calls[0][1]


def test_new_flags_reach_the_model(env):
    argv = ["Hello.", "--subtalker-temperature", "0", "--subtalker-top-k", "5", "--subtalker-top-p", "0.5",
            "--speed", "1.5", "--text-layout", "auto", "-q"]
    assert cli.main(argv) == 0
    (_, kwargs), = env.tts.calls
    assert (kwargs["subtalker_temperature"], kwargs["subtalker_top_k"], kwargs["subtalker_top_p"]) == (0.0, 5, 0.5)
    assert kwargs["speed"] == 1.5 and kwargs["text_layout"] == "auto"


@pytest.mark.parametrize("flags, words", [
    (["--temperature", "-1"], "temperature must be a number from 0 up (0 is greedy), got -1"),
    (["--top-p", "1.5"], "top_p must be a number above 0 and at most 1, got 1.5"),
    (["--max-new-tokens", "0"], "max_new_tokens must be an integer of 1 or more"),
    (["--speed", "0.1"], "speed must be a number from 0.25 to 4.0, got 0.1"),
])
def test_bad_option_values_are_one_line_errors(env, capsys, flags, words):
    assert cli.main(["Hello.", "-q", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1
    assert env.tts.calls == []


def test_speed_that_is_not_a_number_is_a_usage_error(env, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["Hello.", "--speed", "fast"])
    assert e.value.code == 2 and "--speed: invalid float value: 'fast'" in capsys.readouterr().err


def test_custom_voice_gets_a_default_speaker(env):
    assert cli.main(["Hello.", "-q"]) == 0
    assert env.tts.calls[0][1]["speaker"] == "ryan"
    assert env.tts.calls[0][1]["language"] == "auto"


def test_text_from_stdin_dash(env, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("From stdin. Two sentences."))
    assert cli.main(["-", "-q"]) == 0
    assert [t for t, _ in env.tts.calls] == ["From stdin. Two sentences."]


def test_text_from_piped_stdin_without_argument(env, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Piped text."))
    assert cli.main(["-q"]) == 0
    assert [t for t, _ in env.tts.calls] == ["Piped text."]


def test_text_from_file(env, tmp_path):
    f = tmp_path / "story.txt"
    f.write_text("Chapter one.\n\nIt was a dark night. 夜です。", encoding="utf-8")
    assert cli.main(["--file", str(f), "-q"]) == 0
    assert [t for t, _ in env.tts.calls] == ["Chapter one.\n\nIt was a dark night. 夜です。"]


def test_model_from_flag_env_or_default(env, monkeypatch):
    assert cli.main(["Hi.", "-q"]) == 0
    monkeypatch.setenv(cli.MODEL_ENV, "/models/mine")
    assert cli.main(["Hi.", "-q"]) == 0
    assert cli.main(["Hi.", "-q", "--model", "org/other"]) == 0
    assert env.loaded == [cli.DEFAULT_MODEL, "/models/mine", "org/other"]


def test_list_speakers_and_languages(env, capsys):
    assert cli.main(["--list-speakers"]) == 0
    assert capsys.readouterr().out.split() == ["ryan", "vivian"]
    assert cli.main(["--list-languages"]) == 0
    assert capsys.readouterr().out.split() == ["auto", "english", "chinese"]
    assert env.tts.calls == [] and env.players == []


def test_clone_voice_is_made_once_and_saved(env, tmp_path):
    ref = tmp_path / "ref.wav"
    sf.write(ref, np.zeros(SR, np.float32), SR)
    saved = tmp_path / "me.voice"
    argv = ["One. Two.", "--ref-audio", str(ref), "--ref-text", "hello", "--save-voice", str(saved), "-q"]
    assert cli.main(argv) == 0
    voices = [kw["voice"] for _, kw in env.tts.calls]
    assert len(voices) == 1  # one stream: the voice prompt serves every segment
    assert voices[0].args == (str(ref), "hello", False)
    assert saved.read_text() == "voice"


def test_ctrl_c_mid_stream_keeps_a_complete_output(env, tmp_path):
    env.tts.interrupt_at = (0, 2)  # third chunk
    out = tmp_path / "partial.wav"
    assert cli.main(["First one. Second one.", "-o", str(out), "-q"]) == 130
    assert env.players[0].events == ["stop", "close"]
    assert env.tts.closed == 1  # generation was stopped
    samples, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(samples, np.concatenate(env.tts.produced), atol=1 / 32767 + 1e-6)
    assert samples.size == 2 * CHUNK
    assert sorted(os.listdir(tmp_path)) == ["partial.wav"]  # no temporary files left


def test_ctrl_c_before_any_audio_writes_nothing(env, tmp_path):
    env.tts.interrupt_at = (0, 0)
    out = tmp_path / "none.wav"
    assert cli.main(["Hello.", "-o", str(out), "--no-play", "-q"]) == 130
    assert os.listdir(tmp_path) == []


def test_no_device_suggests_output(env, capsys):
    env.device_error = "no audio output device found"
    assert cli.main(["Hello."]) == 2
    line = one_error_line(capsys)
    assert "no audio output device" in line and "--output" in line
    assert env.loaded == []  # failed before the slow model load


def test_no_device_with_output_still_writes_the_file(env, tmp_path, capsys):
    env.device_error = "no audio output device found"
    out = tmp_path / "x.wav"
    assert cli.main(["Hello.", "-o", str(out)]) == 0
    assert out.exists() and env.players == []
    assert "writing" in capsys.readouterr().err


def test_status_line_is_quiet_with_q(env, capsys):
    assert cli.main(["Hello.", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["Hello."]) == 0
    err = capsys.readouterr().err
    assert "first audio" in err and "RTF" in err and "underruns" in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["   "], "empty"),
        (["Hello.", "--speaker", "nobody"], "unknown speaker"),
        (["Hello.", "--voice", "/no/such/voice.safetensors"], "not found"),
        (["Hello.", "--output", "/no/such/folder/x.wav"], "does not exist"),
        (["Hello.", "--output", "x.mp3"], ".wav"),
        (["Hello.", "--ref-text", "hi"], "--ref-audio"),
        (["Hello.", "--no-play"], "--output"),
        (["--file", "/no/such/text.txt"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env, capsys, argv, needle):
    assert cli.main(argv) == 2
    assert needle in one_error_line(capsys)


def test_unwritable_output_path(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a read-only folder
    assert cli.main(["Hello.", "-o", str(tmp_path / "x.wav")]) == 2
    assert "permission denied" in one_error_line(capsys)


def test_model_error_writes_no_file(env, tmp_path, capsys):
    out = tmp_path / "x.wav"
    assert cli.main(["Hello.", "--speaker", "nobody", "-o", str(out)]) == 2
    assert "unknown speaker" in one_error_line(capsys)
    assert os.listdir(tmp_path) == []
    assert env.players == []  # the options are refused before any playing starts


def test_python_dash_m_runs_the_command():
    # Commands run in a process of their own: a command-line start may restart its process.
    run = subprocess.run([sys.executable, "-m", "mlx_qwen3tts.speak", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "--list-speakers" in run.stdout, run.stderr


LIGHT_SPEAK = """
import sys, time
import numpy as np
from mlx_qwen3tts.app import cli  # the package loads its model stack only when asked: the model is faked
"""

SIGINT_CHILD = LIGHT_SPEAK + """
import signal
# As in a terminal's foreground job: pytest started in the background by a non-interactive shell
# passes SIGINT down ignored, and Python then installs no KeyboardInterrupt handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
from mlx_qwen3tts.audio import AudioChunk

class SlowTTS:
    kind, speakers, languages, sample_rate = "custom_voice", ["ryan"], ["auto"], 24000
    def options(self, **kw):
        return kw
    def stream(self, text, options):
        for i in range(10_000):
            x = np.full(1920, 0.25, np.float32)
            yield AudioChunk(x, 24000, i, False, i + 1, 0.0)
            if i == 3:
                print("playing", flush=True)
            time.sleep(0.05)

cli.load_model = lambda name: SlowTTS()
sys.exit(cli.main(sys.argv[1:]))
"""


def alsa_home(tmp_path, asoundrc: str):
    """A HOME whose .asoundrc sets the ALSA default device (read when PortAudio starts)."""
    import ctypes.util

    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("PortAudio is not installed (apt-get install libportaudio2)")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(asoundrc)
    return home


def test_real_missing_device_says_so(tmp_path):
    home = alsa_home(tmp_path, "pcm.!default { type hw card 42 }\n")  # a sound card that is not there
    code = LIGHT_SPEAK + "cli.load_model = lambda name: sys.exit(99)\nsys.exit(cli.main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "Hello."], env=dict(os.environ, HOME=str(home)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error: no audio output device found" in proc.stderr and "--output" in proc.stderr


def test_player_that_cannot_open_suggests_output(env, capsys, monkeypatch):
    def fail(sample_rate, device):
        raise NoOutputDevice("cannot open the audio output (device busy)")

    monkeypatch.setattr(cli, "open_player", fail)
    assert cli.main(["Hello."]) == 2
    line = one_error_line(capsys)
    assert "device busy" in line and "--output" in line


def test_sigint_stops_within_a_second_and_keeps_a_valid_file(tmp_path):
    import signal
    import time

    home = alsa_home(tmp_path, "pcm.!default { type null }\n")
    out = tmp_path / "out.wav"
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, "Talk forever.", "-o", str(out)],
                            env=dict(os.environ, HOME=str(home)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "playing", proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert rc == 130, err
    assert took < 1.0, err
    assert "Traceback" not in err and "stopped" in err
    samples, _ = sf.read(out, dtype="float32")
    assert samples.size >= 4 * CHUNK and samples.size % CHUNK == 0
    assert sorted(os.listdir(tmp_path)) == ["home", "out.wav"]


# -- the Python API: session.speak() ---------------------------------------------------------


class SessionPlayer(FakePlayer):
    def __init__(self, sample_rate, device=None):
        super().__init__()
        assert sample_rate == SR

    def open(self):
        self.events.append("open")
        return self


class SlowFakeTTS(FakeTTS):
    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.fail_at = fail_at

    def stream(self, text, **kwargs):
        self.calls.append((text, kwargs))
        return self._slow()

    def _slow(self):
        import time

        try:
            for i in range(1000):
                if i == self.fail_at:
                    raise ValueError("model failed")
                piece = np.full(CHUNK, 0.1, np.float32)
                self.produced.append(piece)
                yield AudioChunk(piece, SR, i, False, i + 1, 0.0)
                time.sleep(0.005)
        finally:
            self.closed += 1


@pytest.fixture
def session(monkeypatch):
    from mlx_qwen3tts.app import session

    monkeypatch.setattr(session, "Player", SessionPlayer)
    return session


def test_api_speak_blocks_until_played(session):
    tts = FakeTTS()
    speech = session.speak(tts, "One here. Two there.", speaker="vivian", seed=1)
    assert speech.done and speech.progress.streams == 1
    assert [(t, kw) for t, kw in tts.calls] == [("One here. Two there.", {"speaker": "vivian", "seed": 1})]
    np.testing.assert_array_equal(np.concatenate(speech.player.written), np.concatenate(tts.produced))
    assert speech.player.events == ["open", "finish", "drain", "close"]


def test_api_speak_in_background_can_be_stopped(session):
    import time

    tts = SlowFakeTTS()
    speech = session.speak(tts, "A very long story.", block=False, speaker="ryan")
    assert not speech.done
    for _ in range(500):
        if len(tts.produced) >= 3:
            break
        time.sleep(0.01)
    speech.stop()
    assert speech.wait(timeout=5)
    assert speech.progress.stopped and tts.closed == 1 and len(tts.produced) < 1000
    assert "finish" not in speech.player.events and speech.player.events[-1] == "close"


def test_api_speak_background_error_is_raised_by_wait(session):
    speech = session.speak(SlowFakeTTS(fail_at=2), "Hello.", block=False, speaker="ryan")
    with pytest.raises(ValueError, match="model failed"):
        speech.wait(timeout=5)
    assert speech.player.events[-2:] == ["stop", "close"]


def test_api_speak_rejects_empty_text(session):
    with pytest.raises(ValueError, match="empty"):
        session.speak(FakeTTS(), "  ")


def test_text_file_that_is_not_utf8(env, tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    assert cli.main(["--file", str(path), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path} is not UTF-8 text (bad byte at position 3); save it as UTF-8"]
