"""Virtual environments for the voice-agent frameworks the `clients` tests run (pipecat, LiveKit):
they are heavy and pin other versions of what the dev environment has, so each gets a venv of
its own under .cache/client-venvs/, named by its pins and built once (PyPI needed then).

    python tests/client_venvs.py        # builds them all, e.g. before an offline run
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / ".cache" / "client-venvs"
PINS = {
    "pipecat": ("pipecat-ai==1.14.0",),
    "livekit": ("livekit-plugins-openai==1.8.9", "livekit-agents==1.8.9"),
}
BUILD_TIMEOUT = 1800  # seconds for one pip install of a framework and its dependencies


def _python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def client_venv(name: str) -> Path:
    """The Python of `name`'s venv, built first if this set of pins has none yet."""
    pins = PINS[name]
    key = hashlib.sha256(f"{sys.version_info[:2]} {' '.join(pins)}".encode()).hexdigest()[:12]
    folder = ROOT / f"{name}-{key}"
    ready = folder / ".ready"
    if ready.is_file():
        return _python(folder)
    if folder.exists():  # a build that did not finish
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    try:
        subprocess.run([str(_python(folder)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
                       check=True, timeout=BUILD_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"cannot build the {name} venv ({' '.join(pins)}): {e}; it needs PyPI") from None
    ready.write_text(" ".join(pins) + "\n")
    return _python(folder)


if __name__ == "__main__":
    for each in PINS:
        print(each, client_venv(each))
