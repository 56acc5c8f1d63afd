"""The official implementation's side of the parity tests: one request/response loop over pipes.

Started once per test session (tests/official/client.py) with the official venv's interpreter,
as a script: `python tests/official/serve.py`. Each request is one JSON line on stdin,
{"op": NAME, "args": {...}, "arrays": NPZ-OR-NULL, "out": NPZ}; each answer is one JSON line,
{"ok": true, "values": {...}, "arrays": NPZ-OR-NULL} or {"ok": false, "error": TRACEBACK}.
Arrays travel as .npz files in a folder the test process owns; input arrays become keyword
arguments of the operation.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

# Answers go to a copy of the original stdout; anything the libraries print goes to stderr.
_answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
try:
    import torchaudio  # noqa: F401
except Exception:
    # qwen_tts imports torchaudio at import time; only its unreleased 25 Hz path uses it.
    sys.modules.pop("torchaudio", None)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_stubs"))

import numpy as np  # noqa: E402

import checkpoints  # noqa: E402
import runs  # noqa: E402

OPS = {
    "build_speech_tokenizer": checkpoints.build_speech_tokenizer,
    "build_checkpoint": checkpoints.build_checkpoint,
    "build_speaker_encoder": checkpoints.build_speaker_encoder,
    "generate": runs.generate,
    "clone_prompt": runs.clone_prompt,
    "codec_decode": runs.codec_decode,
    "codec_encode": runs.codec_encode,
    "mel": runs.mel,
    "x_vector": runs.x_vector,
    "librosa_mel_filters": runs.librosa_mel_filters,
    "librosa_load": runs.librosa_load,
    "librosa_resample": runs.librosa_resample,
    "qwen_tiktoken": runs.qwen_tiktoken,
}
BUILDERS = {"build_speech_tokenizer", "build_checkpoint", "build_speaker_encoder"}


def answer(request: dict) -> dict:
    kwargs = dict(request.get("args") or {})
    if request.get("arrays"):
        with np.load(request["arrays"]) as npz:
            kwargs |= {k: npz[k] for k in npz.files}
    op = request["op"]
    if op in BUILDERS:
        kwargs["out"] = Path(kwargs["out"])
        OPS[op](**kwargs)
        return {"ok": True, "values": {}, "arrays": None}
    values, arrays = OPS[op](**kwargs)
    if arrays:
        np.savez(request["out"], **arrays)
    return {"ok": True, "values": values, "arrays": request["out"] if arrays else None}


def main() -> None:
    import torch  # noqa: F401  (imported before the first request, so that one is not slow)

    _answers.write(json.dumps({"ok": True, "ready": True}) + "\n")
    _answers.flush()
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        _answers.write(json.dumps(reply) + "\n")
        _answers.flush()


if __name__ == "__main__":
    main()
