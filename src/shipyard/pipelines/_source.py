"""Hash a step's code: its own source and the source of project functions it calls.

"Project" means code that is not installed (not under site-packages, not the standard
library): editing a helper in your repository invalidates the steps that call it, while
upgrading a library does not (declare the environment for that).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import sysconfig
import types
from functools import cache
from pathlib import Path
from typing import Any

_INSTALLED = tuple(
    str(Path(p).resolve())
    for p in {
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        sysconfig.get_paths()["stdlib"],
    }
)


@cache
def _is_project_file(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    resolved = str(Path(filename).resolve())
    return not resolved.startswith(_INSTALLED) and "site-packages" not in resolved


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return code.co_code.hex() if code is not None else repr(obj)


def _referenced(fn: types.FunctionType) -> list[Any]:
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    found = []
    for name in sorted(names):
        value = fn.__globals__.get(name)
        target = getattr(value, "__wrapped__", value)
        if isinstance(target, types.FunctionType | type):
            module = sys.modules.get(target.__module__)
            filename = getattr(module, "__file__", "") or ""
            if _is_project_file(filename):
                found.append(target)
    return found


def code_hash(fn: Any) -> str:
    """sha256 of the function's source and, transitively, the project code it calls."""
    digest = hashlib.sha256()
    seen: set[int] = set()
    stack = [fn]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        # The qualified name and the source, not the module name: the same code imported
        # under another module name (a script run two ways) hashes the same.
        digest.update(f"{getattr(obj, '__qualname__', '')}\n".encode())
        digest.update(_source(obj).encode())
        if isinstance(obj, types.FunctionType):
            stack.extend(_referenced(obj))
    return digest.hexdigest()
