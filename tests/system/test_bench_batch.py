"""`bench --batch`: the codec decode two ways, and a peer's batch beside ours (a stand-in child
prints what mlx-audio's would), on a tiny random checkpoint (not timed)."""

from __future__ import annotations

import json

import pytest

from mlx_qwen3tts.bench import main
from mlx_qwen3tts.testing import make_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_checkpoint("tiny", "custom_voice", tmp_path_factory.mktemp("ckpt") / "tiny")


def test_batch_with_decode_figures_and_a_peer(tiny, tmp_path, monkeypatch, capsys):
    from mlx_qwen3tts.bench import mlx_audio as bench_mlx_audio, reference as bench_reference

    rounds = [{"size": n, "frames": 3 * n, "frames_per_s": 2.0 * n + r, "ms_per_step": 400.0 + r, "wall_s": 1.0,
               "decode_s": 0.1} for r in (0, 1, 2) for n in (1, 2)]
    seen = tmp_path / "args.json"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nprintf '%s' \"$3\" > {seen}\necho '{bench_mlx_audio.MARK}{json.dumps(rounds)}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bench_reference, "official_view", lambda folder, python=None: folder)
    out = tmp_path / "batch.json"
    assert main(["--model", str(tiny), "--dtype", "float32", "--batch", "1", "2", "--batch-frames", "3", "--runs", "3",
                 "--vs", "mlx-audio", "reference", "--mlx-audio-python", str(fake), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "codec decode" in text and "mlx-audio batch_generate" in text
    assert "reference: skipped: the official implementation has no batch path" in text
    sent = json.loads(seen.read_text())
    assert sent["sizes"] == [1, 2] and sent["frames"] == 3 and sent["rounds"] == 3 and sent["speaker"]
    assert len(sent["texts"]) == 2 and sent["dtype"] == "float32" and sent["bits"] is None
    batch = json.loads(out.read_text())["results"][0]["batch"]
    assert batch["mlx_audio"]["2"]["frames_per_s"] == 5.0 and batch["mlx_audio"]["1"]["ms_per_step"] == 401.0
    assert sorted(batch["decode"]) == ["1", "2"]
    assert all(way > 0 for r in batch["decode"].values() for way in (r["interleaved"], r["batched"]))
