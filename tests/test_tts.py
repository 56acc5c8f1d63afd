"""The `TTS` object's own promises across its calls: `tts.decode()` called while streams run on
the same model returns what it would alone, and the streams' audio is what it would be alone
(the pool's streaming decoders keep their own state; the whole-clip decode reads none)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import mlx_qwen3tts
from mlx_qwen3tts import TextFeed
from serving import speaking_checkpoint

KW = dict(speaker="vivian", language="english", temperature=0, subtalker_temperature=0, max_new_tokens=30,
          guards=False, text_layout="streaming", chunk_frames=1)
WHOLE = "The first voice says one thing."
LIVE = ("And the second voice", " says another thing.")


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    return mlx_qwen3tts.load(speaking_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv"))


def live_stream(tts, between=lambda: None) -> np.ndarray:
    """LIVE's words in two pieces; `between` runs after the first chunk, before the second piece,
    so the stream's decoder holds its state across it."""
    feed = TextFeed()
    feed.write(LIVE[0])
    chunks = tts.stream(feed, **KW)
    heard = [next(chunks).samples]
    between()
    feed.write(LIVE[1])
    feed.close()
    return np.concatenate(heard + [c.samples for c in chunks])


def test_decode_while_streams_run(tts):
    whole_alone = np.concatenate([c.samples for c in tts.stream(WHOLE, **KW)])
    live_alone = live_stream(tts)
    clip = tts.generate("Decode me, please.", **{k: v for k, v in KW.items() if k != "chunk_frames"}).codes
    decoded_alone = tts.decode(clip)
    assert np.abs(decoded_alone).max() > 0

    whole_heard, decodes, errors = [], [], []
    first = threading.Event()

    def listen() -> None:
        try:
            for chunk in tts.stream(WHOLE, **KW):
                whole_heard.append(chunk.samples)
                first.set()
        except BaseException as e:  # noqa: BLE001 - raised on the test's thread below
            errors.append(e)
        first.set()

    thread = threading.Thread(target=listen)
    thread.start()
    assert first.wait(120)
    # Both streams are under way (the live one waiting for its second piece) while the model decodes.
    live_heard = live_stream(tts, between=lambda: decodes.extend(tts.decode(clip) for _ in range(3)))
    thread.join(120)
    assert not errors and not thread.is_alive()
    np.testing.assert_array_equal(live_heard, live_alone)
    np.testing.assert_array_equal(np.concatenate(whole_heard), whole_alone)
    assert len(decodes) == 3
    for d in decodes:
        np.testing.assert_array_equal(d, decoded_alone)
