"""A source checkout run as it is: `mlx_qwen3tts.app` is the top-level `app/` folder.

A wheel holds the app as `mlx_qwen3tts/app/`, and an editable install's finder maps the name to
`app/` (pyproject's package-dir says so to both). Run from a checkout with nothing installed,
no finder knows the name: this one does, for that one name only, after every other finder.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

APP = "mlx_qwen3tts.app"


class _AppFinder:
    """Finds `mlx_qwen3tts.app` in the checkout's `app/` folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != APP:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / "__init__.py",
                                                      submodule_search_locations=[str(self.folder)])


def find_app_in_checkout() -> None:
    """Lets `mlx_qwen3tts.app` import from `app/` beside the package in a checkout (where the
    project's pyproject.toml sits beside both); does nothing in a wheel's install."""
    package = Path(__file__).resolve().parent
    root = package.parent
    if (package / "app").exists() or not (root / "app" / "__init__.py").is_file():
        return
    if not (root / "pyproject.toml").is_file():
        return
    if not any(isinstance(finder, _AppFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AppFinder(root / "app"))
