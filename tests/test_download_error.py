"""A repo id that cannot be fetched: one clear line that says what to do, no traceback."""

from __future__ import annotations

import pytest

from mlx_qwen3tts.weights import resolve_checkpoint


def test_no_connection_and_no_cache_says_what_to_do(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("Got: ConnectError: Name or service not known\nA long paragraph from the hub.")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError) as error:
        resolve_checkpoint("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice")
    message = str(error.value)
    assert message.startswith("cannot download 'Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice': no connection and no cached copy")
    assert "Name or service not known" in message and "long paragraph" not in message
    assert "pass a local checkpoint folder" in message and "\n" not in message
