"""`python -m mlx_qwen3tts <command>`: one entry for every command-line tool.

    python -m mlx_qwen3tts speak "Hello there."
    python -m mlx_qwen3tts convert --hf-path Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --mlx-path tts-8bit -q
    python -m mlx_qwen3tts bench --make-checkpoint 0.6b
    python -m mlx_qwen3tts serve --port 8000

Each command keeps its own parser (`python -m mlx_qwen3tts speak --help`). What every command
needs before it starts (on Linux, the fast BLAS) happens here, once.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module with main(argv) -> int, one line for the listing)
COMMANDS = {
    "speak": ("mlx_qwen3tts.app.speak", "say text out loud as it is generated, or write it to a file"),
    "convert": ("mlx_qwen3tts.convert", "convert a checkpoint to MLX (4/8-bit), or report a conversion's quality"),
    "bench": ("mlx_qwen3tts.bench.run", "time to first audio, real-time factor and per-frame cost"),
    "serve": ("mlx_qwen3tts.server.cli", "a local speech server: OpenAI's speech API and a live-text WebSocket"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m mlx_qwen3tts <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "python -m mlx_qwen3tts <command> --help shows a command's options."]
    return "\n".join(lines)


def run(command: str, argv: list[str] | None = None) -> int:
    """Runs `command` with `argv`; `argv=None` is a real command-line start (its own arguments
    from `sys.argv`), which on Linux may first restart the process with the fast BLAS."""
    if argv is None:
        from .blas import restart_command_line

        restart_command_line()
        argv = sys.argv[1:]
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(argv) or 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if argv is None:
        from .blas import restart_command_line

        restart_command_line()
    return run(command, rest)


def entry(command: str):
    """A console script for one command (`mlx-qwen3tts-speak` and the others)."""
    def start() -> None:
        sys.exit(run(command))
    start.__name__ = command
    return start


def console() -> None:
    """The `mlx-qwen3tts` console script."""
    sys.exit(main())


speak = entry("speak")
convert = entry("convert")
bench = entry("bench")
serve = entry("serve")

if __name__ == "__main__":
    sys.exit(main())
