"""`mlx_qwen3tts.app` is the app's one import name in a source checkout and in an editable
install (tests/system/test_wheel.py checks the wheel): the top-level `app/` folder never makes a second
module tree of the same files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from installs import ROOT, app_identity, bare_venv, copy_source, run


@pytest.fixture(scope="module")
def deps_only(tmp_path_factory) -> tuple[Path, dict]:
    """A python with the dependencies and no install of the project."""
    return bare_venv(tmp_path_factory.mktemp("deps") / "venv")


@pytest.fixture(scope="module")
def editable(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A copy of the project installed editable (`pip install -e`) into its own environment."""
    tmp = tmp_path_factory.mktemp("editable")
    src = copy_source(tmp / "src")
    python, env = bare_venv(tmp / "venv")
    installed = run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", src,
                    cwd=tmp, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return src, python, env


def test_a_checkout_imports_the_app_folder_under_the_package_name_only(deps_only):
    python, env = deps_only
    app = app_identity(python, ROOT, env)
    assert Path(app["file"]) == ROOT / "app" / "__init__.py" and app["same"] == "True"
    # From the root, `import app` finds the folder, which refuses the second name.
    assert app["import_app"].startswith("ImportError") and "import mlx_qwen3tts.app" in app["import_app"]
    assert app["app_modules"] == "[]" and app["finders"] == "['_AppFinder']"


def test_a_checkout_runs_speak_and_refuses_the_app_folder_as_a_module(deps_only):
    python, env = deps_only
    spoken = run(python, "-m", "mlx_qwen3tts.speak", "--help", cwd=ROOT, env=env)
    assert spoken.returncode == 0 and "--list-speakers" in spoken.stdout, spoken.stderr
    direct = run(python, "-m", "app.cli", "--help", cwd=ROOT, env=env)
    last = direct.stderr.strip().splitlines()[-1]
    assert direct.returncode != 0 and last.startswith("ImportError: ") and "import mlx_qwen3tts.app" in last


def test_the_checkout_finder_stays_out_of_a_folder_without_the_project(tmp_path):
    # An `app/` beside an installed package, with no pyproject.toml: not a checkout.
    (tmp_path / "mlx_qwen3tts").mkdir()
    for name in ("__init__.py", "_checkout.py", "_deferred_mlx_lm.py"):
        (tmp_path / "mlx_qwen3tts" / name).write_bytes((ROOT / "mlx_qwen3tts" / name).read_bytes())
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    probe = run(sys.executable, "-c", "import sys, mlx_qwen3tts; print([type(f).__name__ for f in sys.meta_path])",
                cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0 and "_AppFinder" not in probe.stdout, probe.stdout + probe.stderr


def test_an_editable_install_maps_the_app_by_itself(editable, tmp_path):
    src, python, env = editable
    # Taking the checkout finder out shows that pyproject's package-dir is what maps the name.
    for drop in (True, False):
        app = app_identity(python, tmp_path, env, drop_checkout_finder=drop)
        assert Path(app["file"]) == src / "app" / "__init__.py" and app["same"] == "True"
        assert app["import_app"].startswith("ModuleNotFoundError") and app["app_modules"] == "[]"
    assert not (src / "mlx_qwen3tts" / "app").exists()


def test_an_editable_install_runs_speak_from_anywhere(editable, tmp_path):
    _, python, env = editable
    for argv in (("-m", "mlx_qwen3tts.speak", "--help"), ("-m", "mlx_qwen3tts", "speak", "--help")):
        spoken = run(python, *argv, cwd=tmp_path, env=env)
        assert spoken.returncode == 0 and "--list-speakers" in spoken.stdout, spoken.stderr
