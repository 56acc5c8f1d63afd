"""A local speech server over the library: OpenAI's speech API over HTTP, with the audio streamed
as it is made in every format, and a WebSocket that takes live text into one generation context.

    python -m mlx_qwen3tts serve --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice

Needs the `server` extra (`pip install "mlx-qwen3tts[server]"`): FastAPI, uvicorn and
python-multipart. The library never imports this package.
"""

__all__ = ["Settings", "create_app"]


def __getattr__(name: str):
    # Loaded on first use, so `python -m mlx_qwen3tts.server` restarts (fast BLAS) before MLX loads.
    if name == "create_app":
        from .routes import create_app

        return create_app
    if name == "Settings":
        from .state import Settings

        return Settings
    raise AttributeError(f"module 'mlx_qwen3tts.server' has no attribute {name!r}")
