"""Any Python object with ``predict``, pickled with its class's source file. The one
flavour that can run code when loaded: it refuses to load unless the caller trusts it."""

from __future__ import annotations

import inspect
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.registry.flavors._base import FlavorKind, confined, load_pickle, model_file


def _save(model: Any, folder: Path) -> dict[str, Any]:
    cls = type(model)
    if cls.__module__ == "__main__":
        raise InvalidInputError(
            "a Python model class defined in __main__ cannot be loaded elsewhere; "
            "define it in a module"
        )
    code_files: list[str] = []
    source = inspect.getsourcefile(cls)
    if source is not None:
        code = folder / "code"
        code.mkdir()
        shutil.copyfile(source, code / Path(source).name)
        code_files.append(f"code/{Path(source).name}")
    path = folder / "python_model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return {
        "model_file": path.name,
        "serialization_format": "pickle",
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
        "code": code_files,
        "module": cls.__module__,
    }


def _load(conf: dict[str, Any], folder: Path, trusted: bool) -> Any:
    path = confined(folder, model_file(conf))
    if not trusted:
        load_pickle(path, trusted, "generic Python")  # refuses before code/ joins sys.path
    code = folder / "code"
    added = code.is_dir() and conf.get("module") not in sys.modules
    if added:
        sys.path.insert(0, str(code))
    try:
        return load_pickle(path, trusted, "generic Python")
    finally:
        if added:
            sys.path.remove(str(code))


FLAVOR = FlavorKind(
    name="python",
    priority=100,
    detect=lambda model: callable(getattr(model, "predict", None)),
    save=_save,
    load=_load,
)
