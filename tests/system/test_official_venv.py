"""The official implementation's venv (tests/official/venv.py): named by its pins, never reused
half-built; and CI's copy of the README's set-up commands (.ci/readme_command.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from official import venv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pins(tmp_path, monkeypatch):
    monkeypatch.delenv(venv.OVERRIDE, raising=False)
    monkeypatch.setattr(venv, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(venv, "PINS", tmp_path / "requirements.txt")
    monkeypatch.setattr(venv, "NO_DEPS", tmp_path / "requirements-no-deps.txt")
    venv.PINS.write_text("torch==2.13.0\n")
    venv.NO_DEPS.write_text("qwen-tts==0.1.1\n")
    built = []
    monkeypatch.setattr(venv, "_build", lambda base, target, say: built.append(target))
    return built


def test_a_changed_pin_names_a_new_venv(pins):
    before = venv.venv_key(sys.executable)
    venv.PINS.write_text("torch==2.14.0\n")
    assert venv.venv_key(sys.executable) != before


def test_a_half_built_venv_is_built_again_and_a_built_one_reused(pins):
    target = venv.CACHE / f"official-venv-{venv.venv_key(venv.find_python311())}"
    (partial := target.with_name(target.name + ".partial") / "bin").mkdir(parents=True)
    (partial / "python").touch()  # an interrupted build
    assert venv.reference_python(say=lambda line: None) == target / "bin" / "python"
    assert pins == [target]
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").touch()
    venv.reference_python(say=lambda line: None)
    assert pins == [target]


def test_ci_runs_the_readme_set_up_commands():
    spec = importlib.util.spec_from_file_location("readme_command", ROOT / ".ci" / "readme_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    install, tests = module.setup_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert install.startswith("pip install . && python -m mlx_qwen3tts.speak ")
    assert tests.startswith("pip install ") and "python -m pytest" in tests and "parity" not in tests
    with pytest.raises(ValueError, match="Set up"):
        module.setup_commands("# no sections\n")
