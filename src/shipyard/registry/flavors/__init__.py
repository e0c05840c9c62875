"""Flavours: how each kind of model is written to a package folder and read back safely.

Nothing read from a store reaches ``pickle.load`` unless the caller passes ``trusted=True``:
scikit-learn models use skops with exactly the types recorded at save time (bound to the
file's sha256), XGBoost and LightGBM their own formats, ONNX its protobuf. Only the generic
Python flavour pickles, and it refuses to load untrusted.

Each flavour is one module of this package defining ``FLAVOR`` (a :class:`FlavorKind`):
adding a flavour is adding that module and its test.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.registry.flavors._base import (
    Flavor,
    FlavorKind,
    Predictor,
    model_file,
    package_version,
    require_extra,
)

__all__ = [
    "Flavor",
    "FlavorKind",
    "Predictor",
    "check_flavor",
    "detect_flavor",
    "flavor_kind",
    "kinds",
    "load_flavor",
    "model_file",
    "package_version",
    "require_extra",
    "save_flavor",
]


@functools.cache
def kinds() -> dict[str, FlavorKind]:
    """Every flavour module of this package, in recognition order."""
    found: list[FlavorKind] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        kind = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FLAVOR", None)
        if isinstance(kind, FlavorKind):
            found.append(kind)
    return {k.name: k for k in sorted(found, key=lambda k: (k.priority, k.name))}


def flavor_kind(name: str) -> FlavorKind:
    """The flavour called ``name``; an unknown one is bad input naming those there are."""
    known = kinds()
    if name not in known:
        raise InvalidInputError(
            f"unknown model flavour {name!r}; Shipyard loads {', '.join(sorted(known))}"
        )
    return known[name]


def detect_flavor(model: Any) -> str:
    """The flavour a model object is stored with."""
    for kind in kinds().values():
        if kind.detect(model):
            return kind.name
    raise InvalidInputError(
        f"cannot register a {type(model).__name__}: it is not a scikit-learn, XGBoost, "
        "LightGBM or ONNX model and has no predict method"
    )


def save_flavor(model: Any, kind: str, folder: Path) -> Flavor:
    """Write ``model`` into ``folder`` in its native format; return its description."""
    return Flavor(kind, flavor_kind(kind).save(model, folder))


def load_flavor(flavor: Flavor, folder: Path, *, trusted: bool = False) -> Any:
    """Read a flavour back from ``folder``; pickle only when ``trusted``."""
    return flavor_kind(flavor.name).load(flavor.conf, folder, trusted)


def check_flavor(flavor: Flavor, folder: Path) -> dict[str, Any]:
    """Check, without loading it, that a stored flavour builds nothing unsafe.

    Registration calls this on the files a client uploaded: skops files must only need
    allow-listed types, XGBoost classes come from a fixed table, ONNX files must hold their
    weights inline, and every model file stays inside its package. Returns what was found
    (the skops types to trust).

    Raises:
        UnsafeModelError: the package asks for anything outside those rules.
    """
    return flavor_kind(flavor.name).check(flavor.conf, folder)
