"""Fresh environments for the install tests: the project copied out of the clone, and a virtual
environment whose only packages are this interpreter's (the dependencies), without their .pth
files, so without any install of the project itself."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a build writes into the tree (build/, *.egg-info), and what is not the project's.
NOT_SOURCE = shutil.ignore_patterns(".git", ".cache", ".benchmarks", ".pytest_cache", "__pycache__", "build",
                                    "dist", "*.egg-info", ".venv", "venv")


def run(*argv, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def copy_source(where: Path) -> Path:
    """The project's files copied to `where` (a build or an editable install writes into its tree)."""
    shutil.copytree(ROOT, where, symlinks=True, ignore=NOT_SOURCE)
    return where


def _lent(site_dir: Path, where: Path) -> Path:
    """`site_dir`'s packages as links in `where`, less any install of this project: an install
    here (say a user's `pip install .`) would shadow the one the test makes."""
    where.mkdir(parents=True)
    for entry in site_dir.iterdir():
        name = entry.name.lower()
        if not (name.startswith(("mlx_qwen3tts", "mlx-qwen3tts", "__editable__")) or name.endswith(".pth")):
            (where / entry.name).symlink_to(entry)
    return where


def bare_venv(where: Path) -> tuple[Path, dict]:
    """A virtual environment at `where` that lends this interpreter's site-packages (the
    dependencies, not the project): its python, and an environment without PYTHONPATH to run it in."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                       cwd=where, env=os.environ).stdout.strip())
    ours = [Path(p) for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()]
    lent = [_lent(p, where / "lent" / str(i)) for i, p in enumerate(ours)]
    (purelib / "dependencies.pth").write_text("\n".join(map(str, lent)) + "\n")
    return python, {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# What the app's import name resolves to: the package's file, whether the app's Player is one
# object by every route, how `import app` fails, and the checkout finders installed. With
# "drop" as its argument, the checkout finder is taken out before the app is imported.
_APP_IDENTITY = """
import sys
import mlx_qwen3tts
if sys.argv[1:] == ["drop"]:
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_AppFinder"]
import mlx_qwen3tts.app
from mlx_qwen3tts.app import Player
from mlx_qwen3tts.app.player import Player as player_Player
from mlx_qwen3tts.app.session import Player as session_Player
print(mlx_qwen3tts.app.__file__)
print(Player is player_Player is session_Player is sys.modules["mlx_qwen3tts.app.player"].Player)
try:
    import app
    print("imported", app.__file__)
except ImportError as e:
    print(type(e).__name__, str(e))
print(sorted(name for name in sys.modules if name.split(".")[0] == "app"))
print([type(f).__name__ for f in sys.meta_path if type(f).__name__ == "_AppFinder"])
"""


def app_identity(python: Path, cwd: Path, env: dict, drop_checkout_finder: bool = False) -> dict[str, str]:
    """Runs `_APP_IDENTITY` in a fresh interpreter; its five answers by name."""
    done = run(python, "-c", _APP_IDENTITY, *(["drop"] if drop_checkout_finder else []), cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = ("file", "same", "import_app", "app_modules", "finders")
    return dict(zip(keys, done.stdout.splitlines(), strict=True))
