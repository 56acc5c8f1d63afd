"""The sound card: whether there is an output device to play through, found before any work."""

from __future__ import annotations


class NoOutputDevice(RuntimeError):
    """Raised when there is no audio output to play through."""


def load_sounddevice():
    """The sounddevice module, or `NoOutputDevice` where PortAudio is missing."""
    # Imported late: PortAudio reads its configuration at import, and may be missing entirely.
    try:
        import sounddevice
    except OSError as e:
        raise NoOutputDevice(f"audio output is unavailable ({e})") from None
    return sounddevice


def check_output_device(device: int | str | None = None) -> str:
    """Returns the name of the output device, or raises `NoOutputDevice`."""
    sd = load_sounddevice()
    try:
        return sd.query_devices(device, kind="output")["name"]
    except (ValueError, sd.PortAudioError):
        what = "no audio output device found" if device is None else f"no audio output device {device!r}"
        raise NoOutputDevice(what) from None
