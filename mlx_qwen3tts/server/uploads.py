"""`POST /v1/audio/voices`: reference audio in (multipart), a registered voice out (Base models).

The fields follow OpenAI's `audio.voices.create`: `audio_sample` (the file; `file` works too),
`name`, and our optional `transcript` (the words in the recording, for in-context cloning;
without it the voice is cloned from its timbre alone). OpenAI's `consent` is accepted and unused.
The upload is read as audio by the library's loader, and checked for length, before the
model is asked for anything or anything is stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from mlx_qwen3tts import SAMPLE_RATE
from mlx_qwen3tts.audio_io import AudioLoadError, check_duration, load_audio

from .errors import APIError
from .scheduler import QueueFull
from .state import ServerState
from .voices import check_name

logger = logging.getLogger(__name__)

FILE_FIELDS = ("audio_sample", "file", "audio")


def read_reference(data: bytes, filename: str) -> np.ndarray:
    """The upload as 24 kHz mono float32, or a 400 saying why it cannot be a voice reference."""
    suffix = os.path.splitext(filename or "")[1][:10] or ".audio"
    with tempfile.TemporaryDirectory(prefix="mlx-qwen3tts-upload-") as folder:
        path = os.path.join(folder, "reference" + "".join(c for c in suffix if c.isalnum() or c == "."))
        with open(path, "wb") as f:
            f.write(data)
        try:
            wav = load_audio(path)
            check_duration(wav)
        except AudioLoadError as e:
            reason = str(e).replace(path, "the upload")
            if reason.startswith("cannot read audio file"):
                reason = ("the upload is not audio this server can read (send WAV, FLAC, OGG or MP3): "
                          + reason.split(": ", 1)[-1])
            raise APIError(400, reason, "invalid_audio", "audio_sample") from None
        except ValueError as e:
            raise APIError(400, f"the upload cannot be used: {e}", "invalid_audio", "audio_sample") from None
    return wav


async def _form(request: Request):
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise APIError(400, "send multipart/form-data with fields audio_sample (the recording), name, and "
                            "optionally transcript", "invalid_content_type")
    try:
        return await request.form(max_files=1, max_fields=16)
    except APIError:
        raise
    except Exception as e:  # python-multipart's errors for a damaged body
        raise APIError(400, f"the multipart body cannot be read ({e})", "invalid_multipart") from None


async def create_voice(request: Request, state: ServerState) -> JSONResponse:
    tts, registry = state.require_tts(), state.registry
    if tts.kind != "base":
        raise APIError(400, f"voice upload needs a Base model; this server runs a {tts.kind} model, whose voices "
                            "are listed by GET /v1/audio/voices", "voice_upload_not_supported")
    registry.require_folder()
    form = await _form(request)
    name = check_name(form.get("name"))
    if name in registry.presets or registry.exists(name):
        raise APIError(409, f"a voice named {name!r} exists already: delete it first or choose another name",
                       "voice_exists", "name")
    upload = next((form[f] for f in FILE_FIELDS if isinstance(form.get(f), UploadFile)), None)
    if upload is None:
        raise APIError(400, "no recording: send it as the multipart file field audio_sample", "missing_audio",
                       "audio_sample")
    transcript = form.get("transcript") or form.get("ref_text")
    if transcript is not None and not isinstance(transcript, str):
        raise APIError(400, "transcript must be a text field", "invalid_value", "transcript")
    transcript = transcript.strip() if transcript else None
    data = await upload.read()
    wav = await asyncio.to_thread(read_reference, data, upload.filename or "")
    try:
        turn = await state.scheduler.acquire("voice upload")
    except QueueFull as e:
        raise state.busy_error(e) from None
    try:
        loop = asyncio.get_running_loop()
        voice = await loop.run_in_executor(state.executor, lambda: tts.clone_voice(
            (wav, SAMPLE_RATE), transcript, x_vector_only=transcript is None))
    except ValueError as e:
        raise APIError(400, f"the voice cannot be cloned: {e}", "invalid_audio", "audio_sample") from None
    finally:
        state.scheduler.release(turn)
    return JSONResponse(registry.add(name, voice), status_code=201)
