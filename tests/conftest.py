import logging
import sys
from pathlib import Path

# Test helpers (reference.py, tiny.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("mlx_qwen3tts").setLevel(logging.INFO)


def pytest_collection_modifyitems(config, items):
    """Tests marked `clients` (voice-agent frameworks in venvs of their own) run only when asked
    for by `-m` (e.g. `-m clients`): they are deselected from every other run."""
    if "clients" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("clients") is None]
    if len(chosen) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("clients")])
        items[:] = chosen
