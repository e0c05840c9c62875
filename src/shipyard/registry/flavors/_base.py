"""What every flavour module shares: the FlavorKind record and the safe-file helpers."""

from __future__ import annotations

import importlib
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.core.skops_trust import UnsafeModelError

logger = logging.getLogger("shipyard.registry.flavors")


class Predictor(Protocol):
    """What a loaded flavour gives back: predictions from a frame or a 2-D array."""

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Predicted labels or values."""
        ...


@dataclass
class Flavor:
    """A flavour's saved description (the block under ``flavors:`` in ``MLmodel``)."""

    name: str
    conf: dict[str, Any]


def _no_keys(conf: dict[str, Any]) -> dict[str, Any]:
    return {}


def check_model_file(conf: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The default check: the model file the flavour names stays inside its package."""
    confined(folder, model_file(conf))
    return {}


@dataclass(frozen=True)
class FlavorKind:
    """One flavour: how a model of this kind is recognised, written, checked and read.

    A module of :mod:`shipyard.registry.flavors` that defines ``FLAVOR = FlavorKind(...)``
    is a flavour; nothing else needs to name it.
    """

    name: str
    #: Recognition order: the first kind whose ``detect`` accepts a model stores it.
    priority: int
    detect: Callable[[Any], bool]
    #: Write the model into the folder; return the flavour's MLmodel block.
    save: Callable[[Any, Path], dict[str, Any]]
    #: Read it back; a pickle only when ``trusted``.
    load: Callable[[dict[str, Any], Path, bool], Any]
    #: Check, without loading, that the stored files build nothing unsafe; returns findings.
    check: Callable[[dict[str, Any], Path], dict[str, Any]] = check_model_file
    #: MLflow's loader module for this flavour, or None when only Shipyard loads it.
    mlflow_loader: str | None = None
    #: MLflow's own keys in the flavour's block, so ``mlflow.<flavour>.load_model`` reads it.
    mlflow_keys: Callable[[dict[str, Any]], dict[str, Any]] = _no_keys
    #: Distributions a plain environment needs to load the flavour.
    needs: tuple[str, ...] = field(default=("numpy", "pandas", "shipyard"))
    #: The ONNX ModelProto of a model of this kind (float input ``[None, n_features]``);
    #: None when the flavour has no converter.
    to_onnx: Callable[[Any, int], Any] | None = None


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def require_extra(module: str, extra: str) -> Any:
    """Import an optional dependency or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InvalidInputError(
            f"this needs {module}, which is not installed: pip install 'shipyard[{extra}]'"
        ) from exc


def is_from(model: Any, package: str) -> bool:
    """Whether the model's class (or a base) comes from ``package``."""
    return any(k.__module__.split(".")[0] == package for k in type(model).__mro__)


def class_name(model: Any) -> str:
    """The model's class as ``module.QualName``."""
    return f"{type(model).__module__}.{type(model).__qualname__}"


def model_file(conf: dict[str, Any]) -> object:
    """The model file a flavour names: Shipyard's ``model_file`` or MLflow's own keys."""
    return conf.get("model_file") or conf.get("pickled_model") or conf.get("data")


def confined(folder: Path, name: object) -> Path:
    """A file of the package folder named in MLmodel, refusing paths that leave it."""
    if not isinstance(name, str) or not name or "\\" in name or name.startswith("/"):
        raise UnsafeModelError(f"a model file name must be a relative path; got {name!r}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise UnsafeModelError(f"model file {name!r} points outside its package")
    return path


def warn_version(dist: str, saved: str | None) -> None:
    """Log when a model is loaded with another release of its library than it was saved."""
    now = package_version(dist)
    if saved and now and saved != now:
        logger.warning("model saved with %s %s, loading with %s", dist, saved, now)


def load_pickle(path: Path, trusted: bool, what: str) -> Any:
    """Unpickle only when the caller said it trusts whoever stored the file."""
    if not trusted:
        raise PermissionDeniedError(
            f"the {what} model is a pickle, which can run any code when loaded; pass "
            "trusted=True (CLI: --trusted) only if you trust whoever stored it",
            flavor=what,
        )
    return pickle.loads(path.read_bytes())  # noqa: S301 - the caller said trusted=True
