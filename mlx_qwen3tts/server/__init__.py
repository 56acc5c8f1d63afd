"""A local speech server over the library: OpenAI's speech API over HTTP, with the audio streamed
as it is made in every format, and a WebSocket that takes live text into one generation context.

    python -m mlx_qwen3tts serve --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice

Needs the `server` extra (`pip install "mlx-qwen3tts[server]"`): FastAPI, uvicorn and
python-multipart. The library never imports this package.
"""

from .app import create_app
from .state import Settings

__all__ = ["Settings", "create_app"]
