import logging
import os
from pathlib import Path

import pytest

# Test helpers (tiny.py, serving.py, reference.py, official/, ...) import as top-level modules from
# every test folder: pyproject's `pythonpath = ["tests"]` puts this folder on the path.
logging.getLogger("mlx_qwen3tts").setLevel(logging.INFO)

TINY_SEED = 5  # its random model speaks for a while before it draws EOS on the tests' texts


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """`tiny_folder(kind)`: a tiny random checkpoint folder of that kind ("custom_voice",
    "voice_design", "base"), written once a session. Copy it before changing it. Base needs the
    official implementation's speaker-encoder layout (built in its venv, tests/official/)."""
    made: dict[str, Path] = {}

    def folder(kind: str = "custom_voice") -> Path:
        if kind not in made:
            if kind == "base":
                from reference import build_checkpoint

                made[kind] = build_checkpoint("base", "proj", "0b6", seed=2)
            else:
                from tiny import make_tiny_checkpoint

                made[kind] = make_tiny_checkpoint(tmp_path_factory.mktemp(kind) / kind, kind=kind, seed=TINY_SEED)
        return made[kind]

    return folder


@pytest.fixture(scope="session")
def tiny_tts(tiny_folder):
    """The tiny CustomVoice model, loaded once a session; tests must not change its settings."""
    import mlx_qwen3tts

    return mlx_qwen3tts.load(tiny_folder("custom_voice"))


def pytest_collection_modifyitems(config, items):
    # Tests marked `clients` (voice-agent frameworks in venvs of their own) run only when asked
    # for by `-m` (e.g. `-m clients`): they are deselected from every other run.
    if "clients" not in (config.getoption("markexpr") or ""):
        chosen = [item for item in items if item.get_closest_marker("clients") is None]
        if len(chosen) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("clients")])
            items[:] = chosen
    if os.environ.get("MLX_QWEN3TTS_SKIP_REFERENCE") == "1":
        skip = pytest.mark.skip(reason="MLX_QWEN3TTS_SKIP_REFERENCE=1 leaves out the official implementation")
        for item in items:
            if item.get_closest_marker("reference"):
                item.add_marker(skip)


def pytest_collection_finish(session):
    """Builds the official implementation's venv before the first test that needs it, with its
    progress on the terminal (inside a test, pytest would capture it)."""
    if session.config.option.collectonly or os.environ.get("MLX_QWEN3TTS_SKIP_REFERENCE") == "1":
        return
    if not any(item.get_closest_marker("reference") for item in session.items):
        return
    from official.venv import VenvError, reference_python

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    say = reporter.write_line if reporter else print
    with capture.global_and_fixture_disabled():
        try:
            reference_python(say)
        except VenvError as e:
            pytest.exit(f"error: {e}\n(MLX_QWEN3TTS_SKIP_REFERENCE=1 runs the suite without the parity tests)",
                        returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_sessionfinish(session):
    from official.client import close

    close()
