"""Lets the package import mlx-lm's model pieces without running `mlx_lm/__init__.py`.

That `__init__` imports mlx-lm's converter and tokenizer utilities, hence transformers (and torch
where it is installed): seconds of start-up for `speak`, spent on tools this package never uses;
it needs only the KV caches, Qwen3 blocks and samplers. The `mlx_lm` package is registered with
its real spec and path so its submodules import as usual; its `__init__` runs the first time a
public name other than those submodules is looked up (`mlx_lm.load`, `from mlx_lm import
generate`), so programs that use mlx-lm themselves see the whole package.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types

_lock = threading.RLock()
_OURS = {"models", "sample_utils"}  # the submodules this package imports


def _run_init(module: types.ModuleType) -> None:
    with _lock:
        if type(module) is _DeferredPackage:
            module.__class__ = types.ModuleType  # runs once, even if the __init__ fails
            module.__spec__.loader.exec_module(module)


class _DeferredPackage(types.ModuleType):
    """`mlx_lm` before its `__init__` has run: submodules import, other names run it first."""

    def __getattr__(self, name: str):
        # Only called for names the module does not have yet.
        _run_init(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'mlx_lm' has no attribute {name!r}") from None

    def __getattribute__(self, name: str):
        # A public name other than our submodules runs the `__init__` first: it may rebind a name
        # that a program's own submodule import left there (`generate` is a function, not the module).
        if not name.startswith("_") and name not in _OURS:
            _run_init(self)
        return types.ModuleType.__getattribute__(self, name)


def defer_mlx_lm_init() -> None:
    """Registers `mlx_lm` unexecuted, unless it is already imported or not installed."""
    with _lock:
        if "mlx_lm" in sys.modules:
            return
        spec = importlib.util.find_spec("mlx_lm")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return  # not installed: the import that needs it will say so
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _DeferredPackage
        sys.modules["mlx_lm"] = module
