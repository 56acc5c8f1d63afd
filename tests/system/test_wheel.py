"""The wheel: what it holds, and `speak` run from a fresh environment that has the package only
from the wheel (its dependencies come from this interpreter's site-packages)."""

from __future__ import annotations

import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from installs import ROOT, app_identity, bare_venv, copy_source, run
from tiny import make_tiny_checkpoint


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    copy_source(tmp / "src")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "-w", tmp / "dist", tmp / "src", cwd=tmp, env=os.environ)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (tmp / "dist").glob("mlx_qwen3tts-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A virtual environment with the wheel installed; this interpreter's site-packages (without
    their .pth files, so no editable install) lend it the dependencies."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    python, env = bare_venv(where)
    installed = run(python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index", wheel,
                    cwd=where, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return where, env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cv")


def test_wheel_holds_the_app_as_files_the_forwarder_source_and_no_tests(wheel):
    with zipfile.ZipFile(wheel) as z:
        infos = {i.filename: i for i in z.infolist()}
        for source in sorted((ROOT / "mlx_qwen3tts").rglob("*.py")):
            name = source.relative_to(ROOT).as_posix()
            assert name in infos and z.read(name) == source.read_bytes(), f"{name} is not in the wheel as it is"
        for source in sorted((ROOT / "app").glob("*.py")):
            info = infos.get(f"mlx_qwen3tts/app/{source.name}")
            assert info is not None, f"{source.name} is not in the wheel"
            assert not stat.S_ISLNK(info.external_attr >> 16), f"app/{source.name} is a link in the wheel"
            assert z.read(info) == source.read_bytes()
        assert z.read("mlx_qwen3tts/blas/gemv_forward.c") == (ROOT / "mlx_qwen3tts/blas/gemv_forward.c").read_bytes()
    assert not [n for n in infos if n.startswith("tests/") or "/tests/" in n]


def test_the_venv_imports_the_wheel_not_the_source(venv, tmp_path):
    where, env = venv
    where_from = run(where / "bin/python", "-c", "import mlx_qwen3tts.app.cli as m; print(m.__file__)",
                     cwd=tmp_path, env=env)
    assert Path(where_from.stdout.strip()).is_relative_to(where), where_from.stdout + where_from.stderr
    # One identity: the app's classes are the same objects by any route, and the wheel has no
    # top-level `app`; no checkout finder is installed, the wheel's own folder is found.
    app = app_identity(where / "bin/python", tmp_path, env)
    assert Path(app["file"]) == Path(where_from.stdout.strip()).with_name("__init__.py")
    assert app["same"] == "True" and app["import_app"].startswith("ModuleNotFoundError")
    assert app["app_modules"] == "[]" and app["finders"] == "[]"
    # From the clone's root the source package comes first: `speak` below must work there too.
    here = run(where / "bin/python", "-c", "import mlx_qwen3tts; print(mlx_qwen3tts.__file__)", cwd=ROOT, env=env)
    assert Path(here.stdout.strip()) == ROOT / "mlx_qwen3tts" / "__init__.py", here.stdout + here.stderr


@pytest.mark.parametrize("place", ["clone root", "elsewhere"])
def test_speak_writes_a_wav(venv, tiny, tmp_path, place):
    where, env = venv
    out = tmp_path / "out.wav"
    spoken = run(where / "bin/python", "-m", "mlx_qwen3tts.speak", "--model", tiny, "--no-play", "-o", out,
                 "--max-new-tokens", "8", "-q", "Hi.", cwd=ROOT if place == "clone root" else tmp_path, env=env)
    assert spoken.returncode == 0, spoken.stdout + spoken.stderr
    samples, rate = sf.read(out, dtype="float32")
    assert rate == 24000 and samples.ndim == 1 and samples.size > 0


def test_help_from_the_venv(venv, tmp_path):
    where, env = venv
    dispatcher = run(where / "bin/python", "-m", "mlx_qwen3tts", "--help", cwd=tmp_path, env=env)
    assert dispatcher.returncode == 0 and "usage: python -m mlx_qwen3tts <command>" in dispatcher.stdout, dispatcher.stderr
    script = run(where / "bin/mlx-qwen3tts-speak", "--help", cwd=tmp_path, env=env)
    assert script.returncode == 0 and "--list-speakers" in script.stdout, script.stderr
