import logging
import os
import sys
from pathlib import Path

import pytest

# Test helpers (reference.py, tiny.py, official/) import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("mlx_qwen3tts").setLevel(logging.INFO)


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
