"""`python -m mlx_qwen3tts serve`: a local speech server for one model.

    python -m mlx_qwen3tts serve                                  # the default model, 127.0.0.1:8000
    python -m mlx_qwen3tts serve --model Qwen/Qwen3-TTS-12Hz-0.6B-Base --voices ~/voices
    python -m mlx_qwen3tts serve --host 0.0.0.0 --api-key "$KEY"
    python -m mlx_qwen3tts serve --wyoming tcp://0.0.0.0:10200 --allow-no-auth    # and Home Assistant

The server listens at once and loads the model meanwhile: /health answers 503 "loading" until
it is ready, then 200. Listening beyond loopback needs an API key (or --allow-no-auth, which warns).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

API_KEY_ENV = "MLX_QWEN3TTS_API_KEY"
# Measured (bench --batch, 0.6B float32, 2-core CPU): 8 streams made 5.1x the frames/s of one with
# each 1.8x slower, 4 streams 3.2x at 1.5x, so 8 requests finish sooner together than as two waves
# of 4; by the device report's arithmetic a base M4 keeps 8 streams real time (README).
DEFAULT_MAX_BATCH = 8
log = logging.getLogger("mlx_qwen3tts.server")


def build_parser() -> argparse.ArgumentParser:
    from mlx_qwen3tts import DEFAULT_MODEL, MODEL_ENV, default_model

    from .state import Settings

    d = Settings()
    p = argparse.ArgumentParser(prog="mlx-qwen3tts serve", description="A local speech server: OpenAI's speech API "
                                "over HTTP, and a WebSocket for live text.")
    p.add_argument("--model", "-m", default=default_model(),
                   help=f"repo id or local folder (default: ${MODEL_ENV} or {DEFAULT_MODEL})")
    p.add_argument("--model-id", help="the model's name in the API (default: the repo id or folder name)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                   help=f"require Authorization: Bearer KEY on every route (default: ${API_KEY_ENV})")
    p.add_argument("--allow-no-auth", action="store_true",
                   help="listen beyond loopback without an API key (anyone who can reach the port can use it)")
    p.add_argument("--wyoming", metavar="tcp://HOST:PORT",
                   help="also speak the Wyoming protocol there, for Home Assistant (e.g. tcp://0.0.0.0:10200; "
                        "it has no authentication: beyond loopback it needs --allow-no-auth)")
    p.add_argument("--voices", type=Path, help="folder of registered voices (Base models); POST /v1/audio/voices "
                                               "writes there")
    p.add_argument("--voice-alias", action="append", default=[], metavar="NAME=VOICE",
                   help="answer voice NAME with the model's VOICE (repeatable); OpenAI's 13 voice names already "
                        "answer to presets on CustomVoice models (README: OpenAI's voice names)")
    p.add_argument("--default-voice", metavar="VOICE",
                   help="the voice for requests that name none; on a Base model, the registered voice that "
                        "OpenAI's voice names (alloy, ash, ...) speak with")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests that may wait behind the ones running; more get 503 (default {d.max_queue})")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                   help="requests and WebSocket sessions that run at once, as one batch; the queue forms "
                        f"beyond it (default {DEFAULT_MAX_BATCH})")
    p.add_argument("--max-input-chars", type=int, default=d.max_input_chars,
                   help=f"longest input per request or WebSocket utterance (default {d.max_input_chars})")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / (1 << 20),
                   help="largest voice recording upload, MB (default %(default)g)")
    p.add_argument("--ws-idle", type=float, default=d.ws_idle_seconds,
                   help="seconds without text after which a WebSocket session lets a waiting request go first "
                        "(default %(default)g)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN (repeatable; none by default)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, allow_no_auth: bool) -> str | None:
    """An error for listening beyond loopback without a key (unless allowed); None when fine."""
    if is_loopback(host) or api_key:
        return None
    if not allow_no_auth:
        return (f"listening on {host} without an API key lets anyone who can reach it use this server: pass "
                f"--api-key KEY (or set {API_KEY_ENV}), or --allow-no-auth to do it anyway")
    log.warning("listening on %s WITHOUT an API key: anyone who can reach this port can use the server", host)
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with proto IPPROTO_TCP, as asyncio only turns Nagle off
    (TCP_NODELAY) on such sockets: with proto 0 a small message (audio.start) holds back the
    audio frame after it until the client's delayed ACK, 40 ms later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def model_name(model: str) -> str:
    path = Path(model).expanduser()
    return path.resolve().name if path.exists() else model


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvicorn

        from .routes import create_app
        from .state import Settings
        from .voice_aliases import parse_alias
    except ImportError as e:
        print(f"error: the server needs its extra ({e.name} is missing): pip install 'mlx-qwen3tts[server]'",
              file=sys.stderr)
        return 2
    if (problem := check_exposure(args.host, args.api_key, args.allow_no_auth)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.max_queue < 0 or args.max_input_chars < 1 or args.max_upload_mb <= 0 or args.ws_idle <= 0:
        print("error: --max-queue must be 0 or more; --max-input-chars, --max-upload-mb and --ws-idle above 0",
              file=sys.stderr)
        return 2
    if args.max_batch < 1:
        print("error: --max-batch must be 1 or more (1 runs one request at a time)", file=sys.stderr)
        return 2
    try:
        aliases = tuple(parse_alias(text) for text in args.voice_alias)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings = Settings(model_id=args.model_id or model_name(args.model), api_key=args.api_key or None,
                        voices_dir=args.voices, max_queue=args.max_queue, max_batch=args.max_batch,
                        max_input_chars=args.max_input_chars,
                        max_upload_bytes=int(args.max_upload_mb * (1 << 20)), ws_idle_seconds=args.ws_idle,
                        cors_origins=tuple(args.cors_origin), voice_aliases=aliases,
                        default_voice=args.default_voice)
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    app = create_app(settings)
    if args.wyoming and (problem := _wyoming(app, args.wyoming, args.allow_no_auth)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False,
                            ws_max_size=settings.ws_max_message_bytes)
    server = uvicorn.Server(config)
    failed = threading.Event()
    # A process started with SIGINT ignored (a background job of a script inherits that) is still
    # stopped by uvicorn on SIGINT, but uvicorn's replay of the signal would be ignored and the
    # process would end with status 0; with Python's own handler it ends by the signal, as always.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # from here a model may be loading: Ctrl-C at any moment ends as _end_by_sigint says
        threading.Thread(target=_load, args=(app, args.model, server, failed), daemon=True,
                         name="mlx-qwen3tts-load").start()
        host, port = sock.getsockname()[:2]
        log.info("listening on http://%s:%d (model %s loading)", f"[{host}]" if ":" in host else host, port,
                 settings.model_id)
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        _end_by_sigint()
    return 1 if failed.is_set() else 0


def _end_by_sigint() -> None:
    """On Ctrl-C (after uvicorn's graceful shutdown, or before uvicorn took the signal over):
    ends the process by SIGINT, as a shell expects, without the interpreter's teardown, which
    would pull MLX's runtime from under a model still loading on its thread (the C++ runtime
    then aborts the process, or the teardown waits on the loading thread)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _wyoming(app, uri: str, allow_no_auth: bool) -> str | None:
    """Serves Wyoming at `uri` beside the HTTP server; an error message when it cannot."""
    try:
        from .wyoming_listen import attach, listen
    except ImportError as e:
        return f"the Wyoming server needs its extra ({e.name} is missing): pip install 'mlx-qwen3tts[server]'"
    try:
        attach(app, listen(uri, allow_no_auth))
    except ValueError as e:
        return str(e)
    return None


def _load(app, model: str, server, failed: threading.Event) -> None:
    """Loads (on the library's own thread, where `load` works), then hands the model over."""
    import mlx_qwen3tts

    state = app.state.server
    try:
        tts = mlx_qwen3tts.load(model)
        state.set_model(tts)  # a --voice-alias or --default-voice the model lacks fails here
    except Exception as e:
        state.load_error = f"{type(e).__name__}: {e}"
        log.error("cannot load %s: %s", model, state.load_error)
        failed.set()
        server.should_exit = True
        return
    log.info("ready: %s (%s, %s)", state.settings.model_id, tts.kind, tts.config.tts_model_size)
