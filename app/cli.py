"""`speak`: say text out loud as it is generated, and/or write it to a file.

    python -m mlx_qwen3tts.speak "Hello there."
    some-llm | python -m mlx_qwen3tts.speak - --speaker ryan --output hello.wav

Text from stdin is spoken as it arrives: generation starts after the first words. All the text
of one run is one generation context through one decoder, whatever its source.
"""

from __future__ import annotations

import argparse
import codecs
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .sinks import Progress, Recorder, feed
from .device import NoOutputDevice, check_output_device
from .player import Player
from .status import Status
from mlx_qwen3tts import DEFAULT_MODEL, MODEL_ENV, default_model
from mlx_qwen3tts.text import estimate_seconds

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
NO_DEVICE_HINT = "use --output FILE.wav --no-play to write the speech to a file"

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """Bad command-line input."""


def load_model(path_or_repo: str):
    import mlx_qwen3tts

    return mlx_qwen3tts.load(path_or_repo)  # dtype "auto": float32 on the CPU, the checkpoint's on the GPU


def load_voice(path: str):
    try:
        from mlx_qwen3tts import Voice
    except ImportError:
        raise UsageError("this version of mlx_qwen3tts cannot load voice files") from None
    return Voice.load(path)


def open_player(sample_rate: int, device: int | str | None) -> Player:
    return Player(sample_rate, device=device).open()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlx-qwen3tts speak", description="Speak text with Qwen3-TTS on Apple Silicon."
    )
    p.add_argument("text", nargs="?", help="text to speak; '-' (or nothing, with piped input) reads stdin")
    p.add_argument("--file", "-f", help="read the text from this file")
    p.add_argument(
        "--model", "-m", default=default_model(),
        help=f"repo id or local folder (default: ${MODEL_ENV} or {DEFAULT_MODEL})",
    )
    g = p.add_argument_group("voice")
    g.add_argument("--speaker", "-s", help="preset speaker (CustomVoice models); see --list-speakers")
    g.add_argument("--language", "-l", default="auto", help="language, or 'auto'; see --list-languages")
    g.add_argument("--instruct", "-i", help="style instruction, or the voice description (VoiceDesign models)")
    g.add_argument("--voice", help="a voice file saved with --save-voice")
    g.add_argument("--ref-audio", help="clone the voice in this recording (Base models)")
    g.add_argument("--ref-text", help="transcript of --ref-audio (better clones)")
    g.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding only")
    g.add_argument("--save-voice", help="save the cloned voice to this file for --voice")
    s = p.add_argument_group("sampling")
    s.add_argument("--temperature", type=float)
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--repetition-penalty", type=float)
    s.add_argument("--subtalker-temperature", type=float, help="the code predictor's temperature (0 is greedy)")
    s.add_argument("--subtalker-top-k", type=int)
    s.add_argument("--subtalker-top-p", type=float)
    s.add_argument("--max-new-tokens", type=int, help="most codec frames per generation segment")
    s.add_argument("--seed", type=int)
    s.add_argument("--speed", type=float, help="speaking rate, 0.25 to 4.0 (default 1.0)")
    # The library's "auto" layout streams live text only; a listener wants the first words at
    # once from a whole text too, so the command asks for streaming unless told otherwise.
    s.add_argument("--text-layout", choices=["streaming", "whole", "auto"], default="streaming",
                   help="streaming (default): the model reads the text as it speaks, so speech starts "
                        "after the first words; whole: each segment's text sits in the prompt first; "
                        "auto: the library's choice")
    s.add_argument("--keep-silence", action="store_true",
                   help="keep the silence the model leaves after each sentence (trimmed by default)")
    o = p.add_argument_group("output")
    o.add_argument("--output", "-o", help="also write the speech to this .wav/.flac/.ogg file")
    o.add_argument("--no-play", action="store_true", help="do not play (use with --output)")
    o.add_argument("--device", help="audio output device (name or index)")
    o.add_argument("--list-speakers", action="store_true", help="print the model's speakers and exit")
    o.add_argument("--list-languages", action="store_true", help="print the model's languages and exit")
    o.add_argument("--quiet", "-q", action="store_true", help="no status line")
    o.add_argument("--verbose", "-v", action="store_true", help="debug logging and full tracebacks")
    return p


def stdin_pieces(stdin) -> Iterator[str]:
    """Stdin as it arrives, in whatever pieces the pipe delivers (UTF-8 decoded across them)."""
    raw = getattr(stdin, "buffer", None)
    if raw is None or not hasattr(raw, "read1"):  # a text stream (tests, IDEs): read what it has
        yield from iter(lambda: stdin.read(4096), "")
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    while data := raw.read1(4096):
        try:
            yield decoder.decode(data)
        except UnicodeDecodeError as e:
            raise UsageError(f"stdin is not UTF-8 text ({e.reason}); send UTF-8") from None
    yield decoder.decode(b"", final=True)


def read_text(args: argparse.Namespace, stdin=None) -> str | Iterator[str]:
    """The text from --file or the argument, or stdin's pieces as they arrive ('-' or piped)."""
    stdin = stdin or sys.stdin
    if args.file and args.text:
        raise UsageError("give the text either as an argument or with --file, not both")
    if args.file:
        try:
            return Path(args.file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"text file not found: {args.file}") from None
        except UnicodeDecodeError as e:
            raise UsageError(f"{args.file} is not UTF-8 text (bad byte at position {e.start}); "
                             "save it as UTF-8") from None
    if args.text == "-" or (args.text is None and not stdin.isatty()):
        return stdin_pieces(stdin)
    if args.text is None:
        raise UsageError("no text: give it as an argument, with --file, or on stdin")
    return args.text


def check_args(args: argparse.Namespace) -> None:
    """Catches bad combinations and paths before the model is loaded."""
    if args.voice and args.ref_audio:
        raise UsageError("use either --voice or --ref-audio, not both")
    if (args.ref_text or args.save_voice or args.x_vector_only) and not args.ref_audio:
        raise UsageError("--ref-text, --x-vector-only and --save-voice need --ref-audio")
    for flag, path in (("--voice", args.voice), ("--ref-audio", args.ref_audio)):
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{flag} file not found: {path}")
    if args.no_play and not args.output:
        raise UsageError("--no-play needs --output FILE, or there is nothing to do")
    if args.output:
        out = Path(args.output)
        if out.suffix.lower() not in AUDIO_SUFFIXES:
            raise UsageError(f"cannot write {out.name!r}: use a .wav, .flac or .ogg file name")
        folder = out.parent
        if not folder.is_dir():
            raise FileNotFoundError(f"cannot write {out}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
            raise UsageError(f"cannot write {out}: permission denied")


def speech_options(args: argparse.Namespace, tts, voice):
    """The run's options, checked by the library (`tts.options`): a bad value is a ValueError."""
    kwargs = {"language": args.language, "speaker": args.speaker, "instruct": args.instruct, "voice": voice,
              "text_layout": args.text_layout}
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "subtalker_temperature",
                 "subtalker_top_k", "subtalker_top_p", "max_new_tokens", "seed", "speed"):
        kwargs[name] = getattr(args, name)
    if not args.keep_silence:
        kwargs["trim_silence"] = True
    if kwargs["speaker"]:
        kwargs["speaker"] = kwargs["speaker"].lower()
    elif getattr(tts, "kind", None) == "custom_voice" and tts.speakers:
        kwargs["speaker"] = tts.speakers[0]  # CustomVoice needs one; the first is a fine default
    return tts.options(**{k: v for k, v in kwargs.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    listing = args.list_speakers or args.list_languages
    text: str | Iterator[str] = ""
    if not listing:
        check_args(args)
        text = read_text(args)
        if isinstance(text, str) and not text.strip():
            raise UsageError("the text is empty")
    play = not args.no_play and not listing
    if args.device is not None and args.device.isdigit():
        args.device = int(args.device)  # an index, not a name
    if play:
        try:
            check_output_device(args.device)
        except NoOutputDevice as e:
            if not args.output:
                raise NoOutputDevice(f"{e}; {NO_DEVICE_HINT}") from None
            print(f"{e}; writing {args.output} only", file=sys.stderr)
            play = False

    tts = load_model(args.model)
    if listing:
        items = (tts.speakers if args.list_speakers else []) + (tts.languages if args.list_languages else [])
        if args.list_speakers and not tts.speakers:
            print(f"this {tts.kind} model has no preset speakers", file=sys.stderr)
        print("\n".join(items))
        return 0

    voice = None
    if args.voice:
        voice = load_voice(args.voice)
    elif args.ref_audio:
        voice = tts.clone_voice(args.ref_audio, args.ref_text, x_vector_only=args.x_vector_only)
        if args.save_voice:
            voice.save(args.save_voice)
    options = speech_options(args, tts, voice)
    # A whole text sizes the playback buffer; text still arriving leaves it to the player.
    estimate = estimate_seconds(text) if isinstance(text, str) else None

    try:
        player = open_player(tts.sample_rate, args.device) if play else None
    except NoOutputDevice as e:
        raise NoOutputDevice(f"{e}; {NO_DEVICE_HINT}") from None
    recorder = Recorder(tts.sample_rate) if args.output else None
    sinks = [s for s in (player, recorder) if s is not None]
    status = Status(args.quiet, player)
    progress: Progress | None = None
    interrupted = False
    # Only a listener needs real time; text still arriving would make its waits look slow.
    from mlx_qwen3tts.rtf import RealTimeWatch

    watch = RealTimeWatch(tts) if player is not None and not args.quiet and isinstance(text, str) else None

    def on_chunk(p: Progress) -> None:
        nonlocal progress
        if progress is None:
            log.debug("first audio %.2f s after the start", p.first_chunk)
        progress = p
        if watch is not None and (tip := watch.check(p.samples, p.sample_rate, p.elapsed)):
            status.note(tip)
        status.update(p)

    try:
        if player is not None:
            player.expect(estimate)
        progress = feed([tts.stream(text, options)], sinks, on_chunk=on_chunk)
        if player is not None:
            player.drain()
    except KeyboardInterrupt:
        interrupted = True
        if player is not None:
            player.stop()
    finally:
        if player is not None:
            player.close()

    note = "stopped" if interrupted else ""
    if recorder is not None and recorder.samples.size:
        # After Ctrl-C this is everything generated up to the stop; the write is atomic either way.
        path = recorder.save(args.output)
        note = " · ".join(t for t in (note, f"wrote {path}") if t)
    status.done(progress, note)
    return 130 if interrupted else 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 ok, 1 failure, 2 bad input, 130 Ctrl-C)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return run(args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NoOutputDevice) as e:
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if args.verbose:
            raise
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
