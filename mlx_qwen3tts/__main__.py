"""`python -m mlx_qwen3tts <command>`: one entry for every command-line tool.

    python -m mlx_qwen3tts speak "Hello there."
    python -m mlx_qwen3tts convert --hf-path Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --mlx-path tts-8bit -q
    python -m mlx_qwen3tts bench --make-checkpoint 0.6b
    python -m mlx_qwen3tts serve --port 8000

Each command keeps its own parser (`python -m mlx_qwen3tts speak --help`). What every command
needs before it starts (on Linux, the fast BLAS) happens here, once, and only here: the other
ways in (`python -m mlx_qwen3tts.speak`, `python convert.py`, ...) hand their start to this
module with `runpy` rather than import it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# command -> (module with main(argv) -> int, one line for the listing)
COMMANDS = {
    "speak": ("mlx_qwen3tts.app.cli", "say text out loud as it is generated, or write it to a file"),
    "convert": ("mlx_qwen3tts.convert_checkpoint", "convert a checkpoint to MLX (4/8-bit), or report a conversion's quality"),
    "bench": ("mlx_qwen3tts.bench.run", "time to first audio, real-time factor and per-frame cost"),
    "serve": ("mlx_qwen3tts.server.cli", "a local speech server: OpenAI's speech API and a live-text WebSocket"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m mlx_qwen3tts <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "python -m mlx_qwen3tts <command> --help shows a command's options."]
    return "\n".join(lines)


# Commands the listing leaves out: tools for the project's own measurements.
TOOLS = {
    "server-bench": "mlx_qwen3tts.bench.server",
    "gpu-check": "mlx_qwen3tts.bench.gpu_check",
    "wyoming-bench": "mlx_qwen3tts.bench.wyoming",
}
# The other ways in, by the file Python started (relative to the package's parent folder): each
# of these files hands its start to this module (runpy), so what every start needs happens here.
ENTRY_FILES = {
    "mlx_qwen3tts/speak.py": "speak",
    "mlx_qwen3tts/convert_checkpoint.py": "convert",
    "convert.py": "convert",  # the repository's script
    "mlx_qwen3tts/bench/__main__.py": "bench",
    "mlx_qwen3tts/server/__main__.py": "serve",
    "mlx_qwen3tts/bench/server.py": "server-bench",
    "mlx_qwen3tts/bench/gpu_check.py": "gpu-check",
    "mlx_qwen3tts/bench/wyoming.py": "wyoming-bench",
}


def run(command: str, argv: list[str] | None = None) -> int:
    """Runs `command` with `argv`; `argv=None` is a real command-line start (its own arguments
    from `sys.argv`, after `start`)."""
    if argv is None:
        start()
        argv = sys.argv[1:]
    module = importlib.import_module(COMMANDS[command][0] if command in COMMANDS else TOOLS[command])
    return module.main(argv) or 0


def start() -> None:
    """What every command line needs before its command: on Linux, a restart with the fast BLAS
    (once; a program of the user's that imports a command is never restarted)."""
    from .blas import restart_command_line

    restart_command_line()


def entry_command() -> str | None:
    """The command of the file Python was started with, if it is one of `ENTRY_FILES`."""
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    try:
        return ENTRY_FILES.get(script.relative_to(Path(__file__).resolve().parent.parent).as_posix())
    except (AttributeError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    if argv is None and (command := entry_command()) is not None:
        return run(command)
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS and command not in TOOLS:
        print(f"error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if argv is None:
        start()
    return run(command, rest)


def entry(command: str):
    """A console script for one command (`mlx-qwen3tts-speak` and the others)."""
    def script() -> None:
        sys.exit(run(command))
    script.__name__ = command
    return script


def console() -> None:
    """The `mlx-qwen3tts` console script."""
    sys.exit(main())


speak = entry("speak")
convert = entry("convert")
bench = entry("bench")
serve = entry("serve")

if __name__ == "__main__":
    sys.exit(main())
