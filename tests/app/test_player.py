"""The live player through a real PortAudio output stream on a headless ALSA `null` device.

PortAudio reads the ALSA configuration when sounddevice is imported, so each scenario runs in a
child process (this file, run as a script) whose HOME holds an `.asoundrc` with a null default PCM.
The null device consumes audio as fast as it is asked to; the scenarios pace it to real time by
sleeping one block's duration in the player's tap, which runs in the audio callback.
The child saves what it captured to an .npz file and the assertions are made here.
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

SR = 24000
CHUNK = 1920  # one codec frame
ASOUNDRC = "pcm.!default { type null }\npcm.nullout { type null }\n"


def signal(n: int, seed: int = 0) -> np.ndarray:
    """Strictly positive test audio, so the device's silence (exact zeros) is easy to strip."""
    t = np.arange(n)
    return (0.3 + 0.1 * np.sin(2 * np.pi * (220 + 40 * seed) * t / SR)).astype(np.float32)


# -- child side ----------------------------------------------------------------------------


def _child(scenario: str, out: str) -> None:
    import sounddevice as sd

    from mlx_qwen3tts.app.sinks import Recorder, feed
    from mlx_qwen3tts.app.device import NoOutputDevice, check_output_device
    from mlx_qwen3tts.app.player import Player

    captured: list[np.ndarray] = []

    def tap(block: np.ndarray) -> None:
        captured.append(block)
        time.sleep(len(block) / SR)  # real-time pacing

    opened = []
    real_stream = sd.OutputStream

    def counting_stream(*a, **k):
        opened.append(1)
        return real_stream(*a, **k)

    sd.OutputStream = counting_stream
    result: dict = {}

    def produce(player, sig, sizes, sleeps):
        t0 = time.perf_counter()
        pos = i = 0
        while pos < sig.size:
            n = sizes[i % len(sizes)]
            player.write(sig[pos : pos + n])
            pos += n
            time.sleep(sleeps[i] if i < len(sleeps) else sleeps[-1])
            i += 1
        result["finish_t"] = time.perf_counter() - t0
        player.finish()
        return t0

    if scenario == "fast":
        # Faster than real time, odd chunk sizes, a ring smaller than the clip (wraps, blocks).
        sig = signal(SR)
        player = Player(SR, tap=tap, blocksize=480, buffer_seconds=0.3).open()
        produce(player, sig, [CHUNK, 1000, 3333, 480], [0.01])
        result["drained"] = player.drain(timeout=10)
    elif scenario == "stall":
        # Fast, then a stall longer than the buffer holds: one underrun, no lost samples.
        sig = signal(SR)
        player = Player(SR, tap=tap, blocksize=480).open()
        produce(player, sig, [CHUNK], [0.01] * 5 + [1.0] + [0.01])
        result["drained"] = player.drain(timeout=10)
    elif scenario == "slow":
        # Steadily slower than real time (RTF 1.5), with the expected length known.
        sig = signal(16 * CHUNK)
        player = Player(SR, tap=tap, blocksize=480).open()
        player.expect(sig.size / SR)
        t0 = produce(player, sig, [CHUNK], [1.5 * CHUNK / SR])
        result["start_t"] = player.started_at - t0
        result["drained"] = player.drain(timeout=10)
    elif scenario == "stop":
        sig = signal(5 * SR)
        player = Player(SR, tap=tap, blocksize=480).open()
        for pos in range(0, sig.size, CHUNK):
            player.write(sig[pos : pos + CHUNK])
        while player.delivered < SR // 4:
            time.sleep(0.01)
        t = time.perf_counter()
        player.stop()
        result["stop_s"] = time.perf_counter() - t
        t = time.perf_counter()
        player.write(sig[:CHUNK])  # ignored, and must not block
        result["drained"] = player.drain(timeout=5)
        result["after_stop_s"] = time.perf_counter() - t
    elif scenario == "drain":
        sig = signal(SR // 2)
        player = Player(SR, tap=tap, blocksize=480).open()
        player.write(sig[: SR // 4])
        result["drain_unfinished"] = player.drain(timeout=0.3)
        player.write(sig[SR // 4 :])
        player.finish()
        result["drained"] = player.drain(timeout=10)
        result["delivered_at_drain"] = player.delivered
    elif scenario == "sentences":
        # Three "sentences" through feed(): one player, played back to back.
        from mlx_qwen3tts.audio import AudioChunk

        parts = [signal(n, seed=i) for i, n in enumerate((7000, 11000, 5000))]

        def stream(x):
            for i, pos in enumerate(range(0, x.size, CHUNK)):
                yield AudioChunk(x[pos : pos + CHUNK], SR, i, pos + CHUNK >= x.size, i + 1, 0.0)
                time.sleep(0.005)

        player = Player(SR, tap=tap, blocksize=480).open()
        recorder = Recorder(SR)
        progress = feed((stream(x) for x in parts), [player, recorder])
        result["drained"] = player.drain(timeout=10)
        result["streams"] = progress.streams
        np.save(out + ".rec.npy", recorder.samples)
        sig = np.concatenate(parts)
    elif scenario == "no_device":
        for call in (lambda: check_output_device("no-such-device"),
                     lambda: Player(SR, device="no-such-device").open()):
            try:
                call()
                result.setdefault("errors", []).append("")
            except NoOutputDevice as e:
                result.setdefault("errors", []).append(str(e))
        np.savez(out, **{k: np.array(v) for k, v in result.items()})
        return
    else:
        raise SystemExit(f"unknown scenario {scenario}")

    player.close()
    result.update(
        underruns=player.underruns, delivered=player.delivered, fade_len=player.fade_len,
        streams_opened=len(opened), signal=sig,
        played=np.concatenate(captured) if captured else np.zeros(0, np.float32),
    )
    np.savez(out, **{k: np.asarray(v) for k, v in result.items()})


# -- test side -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def portaudio():
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("PortAudio is not installed (apt-get install libportaudio2)")


def run(scenario: str, tmp_path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text(ASOUNDRC)
    out = str(tmp_path / "result.npz")
    # The child runs this file as a script: the checkout's package goes on its path (an
    # installed copy, where there is one, would come after it).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, HOME=str(home), PYTHONPATH=path)
    proc = subprocess.run([sys.executable, __file__, scenario, out], env=env, capture_output=True,
                          text=True, timeout=60)
    if "PortAudio library not found" in proc.stderr:
        pytest.skip("PortAudio is not installed")
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def sound(r: dict) -> np.ndarray:
    """What the device played, without the silence around and between the audio."""
    played = r["played"]
    return played[played != 0]


def with_end_fades(sig: np.ndarray, n: int) -> np.ndarray:
    from mlx_qwen3tts.app.player import fade_curve

    x = sig.copy()
    x[:n] *= fade_curve(n)
    x[-n:] *= fade_curve(n)[::-1]
    return x


@pytest.fixture(scope="module")
def fast(portaudio, tmp_path_factory):
    return run("fast", tmp_path_factory.mktemp("fast"))


def test_fast_producer_plays_everything_in_order_without_underruns(fast):
    r = fast
    assert r["drained"]
    assert int(r["underruns"]) == 0
    assert int(r["streams_opened"]) == 1  # one stream for the whole clip
    assert int(r["delivered"]) == r["signal"].size
    np.testing.assert_array_equal(sound(r), with_end_fades(r["signal"], int(r["fade_len"])))


def test_fades_only_at_the_ends(fast):
    r = fast
    n, sig, got = int(r["fade_len"]), r["signal"], sound(r)
    assert np.all(got[:n] < sig[:n]) and np.all(got[-n:] < sig[-n:])
    assert got[0] < 0.05 * sig[0] and got[-1] < 0.05 * sig[-1]  # starts and ends near silence
    np.testing.assert_array_equal(got[n:-n], sig[n:-n])  # untouched across every chunk boundary


def test_stall_counts_an_underrun_and_loses_nothing(portaudio, tmp_path):
    r = run("stall", tmp_path)
    assert r["drained"]
    assert int(r["underruns"]) == 1
    played = r["played"]
    first, last = np.flatnonzero(played)[[0, -1]]
    assert np.any(played[first:last] == 0)  # the stall really left a silent gap
    np.testing.assert_array_equal(sound(r), with_end_fades(r["signal"], int(r["fade_len"])))


def test_slow_producer_prebuffers_just_enough(portaudio, tmp_path):
    r = run("slow", tmp_path)
    assert r["drained"]
    assert int(r["underruns"]) == 0
    assert 0 < float(r["start_t"]) < float(r["finish_t"])  # started before generation ended
    np.testing.assert_array_equal(sound(r), with_end_fades(r["signal"], int(r["fade_len"])))


def test_stop_cuts_quickly_with_a_fade(portaudio, tmp_path):
    r = run("stop", tmp_path)
    assert float(r["stop_s"]) < 1.0 and float(r["after_stop_s"]) < 1.0
    assert r["drained"]
    sig, got, n = r["signal"], sound(r), int(r["fade_len"])
    assert SR // 4 <= got.size < sig.size // 2
    from mlx_qwen3tts.app.player import fade_curve

    k = got.size
    np.testing.assert_array_equal(got[:-n][n:], sig[n : k - n])
    np.testing.assert_allclose(got[-n:], sig[k - n : k] * fade_curve(n)[::-1], rtol=1e-6)


def test_drain_waits_for_the_tail(portaudio, tmp_path):
    r = run("drain", tmp_path)
    assert not r["drain_unfinished"]  # nothing finished yet: drain times out
    assert r["drained"]
    assert int(r["delivered_at_drain"]) == r["signal"].size


def test_sentences_play_back_to_back_through_one_stream(portaudio, tmp_path):
    r = run("sentences", tmp_path)
    assert r["drained"] and int(r["streams"]) == 3
    assert int(r["streams_opened"]) == 1 and int(r["underruns"]) == 0
    np.testing.assert_array_equal(sound(r), with_end_fades(r["signal"], int(r["fade_len"])))
    # No silence between sentences: the sound is one unbroken run.
    played = r["played"]
    first, last = np.flatnonzero(played)[[0, -1]]
    assert np.all(played[first : last + 1] != 0)
    np.testing.assert_array_equal(np.load(str(tmp_path / "result.npz") + ".rec.npy"), r["signal"])


def test_missing_device_is_a_clear_error(portaudio, tmp_path):
    r = run("no_device", tmp_path)
    errors = [str(e) for e in r["errors"]]
    assert len(errors) == 2 and all("no-such-device" in e or "audio output" in e for e in errors)
    assert all(errors)


def test_prebuffer_formula():
    from mlx_qwen3tts.app.player import prebuffer_seconds

    # Faster than real time: only the wait for the next chunk, however long the text.
    assert prebuffer_seconds(0.5, 100.0, 0.08) == pytest.approx(0.08)
    # Twice slower than real time: the whole remaining duration must be banked first.
    assert prebuffer_seconds(2.0, 10.0, 0.08) == pytest.approx(10.0 + 0.32)
    assert prebuffer_seconds(1.5, 4.0, 0.0) == pytest.approx(2.0)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
