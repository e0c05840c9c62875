"""Import a pipeline or a step by target: ``path/to/file.py:name`` or ``package.module:name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from shipyard.core.errors import InvalidInputError


def import_module_of(where: str) -> ModuleType:
    """Import a module from a file path (``.py``) or a dotted name."""
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise InvalidInputError(f"pipeline file {where!r} does not exist")
        name = path.stem
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__file__", None) == str(path.resolve()):
            return existing
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path.resolve())
        if spec is None or spec.loader is None:
            raise InvalidInputError(f"cannot import {where!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise InvalidInputError(f"cannot import module {where!r}: {exc}") from exc


def import_target(target: str) -> Any:
    """The object named by ``FILE.py:NAME`` or ``MODULE:NAME``."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise InvalidInputError(
            f"pipeline must be FILE.py:FUNCTION or MODULE:FUNCTION; got {target!r}"
        )
    module = import_module_of(where)
    if not hasattr(module, attr):
        raise InvalidInputError(f"{where!r} has no attribute {attr!r}")
    return getattr(module, attr)
