"""The server tests' helpers: a real uvicorn server on a free loopback port, in this process
(so a test can read the server's own records), and decoding of what it sends."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the server tests need the test extra: pip install -e '.[test]'")
uvicorn = pytest.importorskip("uvicorn")

import mlx_qwen3tts  # noqa: E402
from mlx_qwen3tts.server import Settings, create_app  # noqa: E402
from mlx_qwen3tts.server.cli import bind  # noqa: E402
from tiny import make_tiny_checkpoint  # noqa: E402

TEXT = "Hello world, this is a test of the server."
LIVE = dict(non_streaming_mode=False)  # live text's layout: the model reads the text as it speaks
PCM16 = 1 / 32768 + 1e-6  # one step of 16-bit PCM


def pieces(text: str, sizes=(1, 3, 2, 7, 5)) -> list[str]:
    """`text` cut into pieces of these sizes in turn: most cuts fall inside words."""
    out, i, k = [], 0, 0
    while i < len(text):
        out.append(text[i:i + sizes[k % len(sizes)]])
        i, k = i + sizes[k % len(sizes)], k + 1
    return out


def live_feed(ops) -> mlx_qwen3tts.TextFeed:
    """A closed feed holding a live client's writes (str) and flushes (None), in order: what a
    session's text becomes in process, to compare its audio with."""
    feed = mlx_qwen3tts.TextFeed()
    for op in ops:
        feed.flush() if op is None else feed.write(op)
    feed.close()
    return feed


def speaking_checkpoint(folder: Path, kind: str = "custom_voice", size: str = "1b7", seed: int = 5) -> Path:
    """A tiny checkpoint whose audio depends on its codes. The tiny codec keeps MLX's own
    initialisation, whose codebooks are zeros, so every clip of a length sounds the same;
    random codebooks make each request's audio its own, so a mix-up between them shows."""
    import mlx.core as mx

    path = make_tiny_checkpoint(folder, kind=kind, size=size, seed=seed)
    weights_file = path / "speech_tokenizer" / "model.safetensors"
    weights = mx.load(str(weights_file))
    key = mx.random.key(seed)
    for name in [n for n in weights if n.endswith("codebooks")]:
        key, sub = mx.random.split(key)
        weights[name] = mx.random.normal(weights[name].shape, key=sub)
    mx.save_safetensors(str(weights_file), weights)
    return path


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    """One speaking tiny CustomVoice model per test module (import it with `server`)."""
    return mlx_qwen3tts.load(speaking_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv"))


@pytest.fixture(scope="module")
def server(tts):
    """A server on `tts` for the whole module."""
    with LiveServer(tts) as live:
        yield live


class LiveServer:
    """`with LiveServer(tts, max_queue=2) as server:` serves `tts` at `server.url` until the block ends."""

    def __init__(self, tts, **settings):
        self.app = create_app(Settings(model_id="tiny-tts", **settings), tts)
        self.state = self.app.state.server

    def __enter__(self) -> LiveServer:
        sock = bind("127.0.0.1", 0)  # the server's own: with Nagle off, as the CLI's
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=5,
                                ws_max_size=self.state.settings.ws_max_message_bytes)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "the server to start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/audio/speech/stream"

    def openai(self, api_key: str = "unused"):
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=60)

    def record(self, request_id: str, timeout: float = 30):
        """The server's record of a finished request (its log line's figures)."""
        found = []

        def done():
            found[:] = [r for r in list(self.state.records) if r.id == request_id]
            return bool(found)

        wait_for(done, timeout, f"request {request_id} to finish")
        return found[0]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def decode(data: bytes, fmt: str) -> np.ndarray:
    """float32 samples from a response body of format `fmt`."""
    import soundfile as sf

    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768
    if fmt == "pcm_f32":
        return np.frombuffer(data, "<f4")
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert f.samplerate == 24000 and f.channels == 1
        if f.frames < 1 << 40:
            return f.read(dtype="float32")
        # A streamed FLAC says "length unknown": soundfile's read() seeks after each block,
        # which libsndfile cannot do there, so the frames are read with its C call directly.
        out, block = [], np.empty(4096, np.float32)
        while (n := sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", block.ctypes.data), len(block))) > 0:
            out.append(block[:n].copy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def aligned_correlation(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 2400) -> tuple[int, float]:
    """(lag, correlation) where `decoded[lag:]` best matches `reference` (a codec's delay is the lag)."""
    n = len(reference)
    size = 1 << int(np.ceil(np.log2(len(decoded) + n)))
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    scores = np.fft.irfft(spectrum, size)[: max(0, min(max_lag, len(decoded) - n)) + 1]
    lag = int(np.argmax(scores))
    return lag, float(np.corrcoef(reference, decoded[lag:lag + n])[0, 1])


class Socket:
    """A `websockets` client session with the server's WebSocket, read message by message."""

    def __init__(self, server: LiveServer, api_key: str | None = None):
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._connection = connect(server.ws_url, additional_headers=headers, open_timeout=30, close_timeout=5)
        self.ws = self._connection.__enter__()
        self.events: list[dict] = []
        self.audio: dict[int, list[bytes]] = {}  # utterance -> its binary frames
        self._utterance: int | None = None

    def send(self, kind: str, **fields) -> None:
        import json

        self.ws.send(json.dumps({"type": kind, **fields}))

    def next(self, timeout: float = 30):
        """The next message: a JSON event (dict) or an audio frame (bytes), kept in order."""
        import json

        message = self.ws.recv(timeout=timeout)
        if isinstance(message, bytes):
            assert self._utterance is not None, "audio outside audio.start ... audio.done"
            self.audio[self._utterance].append(message)
            return message
        event = json.loads(message)
        self.events.append(event)
        if event["type"] == "audio.start":
            self._utterance = event["utterance"]
            self.audio[self._utterance] = []
        elif event["type"] == "audio.done":
            self._utterance = None
        return event

    def until(self, kind: str, timeout: float = 30) -> dict:
        """Reads up to and including the next event of type `kind`."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(message, dict) and message["type"] == kind:
                return message

    def until_closed(self, timeout: float = 30) -> int:
        """Reads everything until the server closes; its close code."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout
        try:
            while True:
                self.next(max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None

    def samples(self, utterance: int, fmt: str = "pcm") -> np.ndarray:
        return decode(b"".join(self.audio[utterance]), fmt)

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
