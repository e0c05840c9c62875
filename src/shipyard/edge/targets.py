"""Edge targets: the budgets a class of devices sets (size, latency, accuracy, opset).

Declared in ``shipyard.yaml`` as documents of ``kind: EdgeTarget`` (beside the project's
other objects; ``shipyard plan`` reads past them) or in ``pyproject.toml`` under
``[tool.shipyard.edge.targets.<name>]``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.core.errors import InvalidInputError, NotFoundError

KIND = "EdgeTarget"
METRICS = ("roc_auc", "accuracy", "r2")


class EdgeTarget(BaseModel):
    """A device class's budgets. Latency is measured on this machine with ``threads``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    max_size_mb: float | None = Field(default=None, gt=0, description="Largest model file.")
    max_p99_ms: float | None = Field(
        default=None, gt=0, description="Slowest 99th-percentile time to predict one row."
    )
    threads: int = Field(default=1, ge=1, le=64, description="Threads ONNX Runtime may use.")
    max_metric_drop: float = Field(
        default=0.005,
        ge=0,
        le=1,
        description="Largest fall of the metric below the native model's on the held-out set.",
    )
    metric: str | None = Field(
        default=None,
        description="roc_auc (binary), accuracy (classes) or r2 (regression); default by task.",
    )
    max_score_diff: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest change of any row's score (the "
        "positive class's probability): set it where decisions use a fixed threshold.",
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Smallest share of rows predicted as the native model predicts them.",
    )
    opset: int = Field(default=21, ge=13, le=30, description="Newest ONNX opset the device runs.")
    int8: bool = Field(default=True, description="Whether int8 quantised variants may ship.")
    fp16: bool = Field(default=True, description="Whether float16 variants may ship.")

    def budgets(self) -> dict[str, Any]:
        """The budgets as recorded in a bundle's manifest."""
        return self.model_dump(mode="json")


def _check(name: str, body: object, where: str) -> EdgeTarget:
    if not isinstance(body, dict):
        raise InvalidInputError(f"{where}: edge target {name!r} must be a mapping")
    if body.get("metric") is not None and body["metric"] not in METRICS:
        raise InvalidInputError(
            f"{where}: edge target {name!r}: metric must be one of {', '.join(METRICS)}"
        )
    try:
        return EdgeTarget.model_validate({**body, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"{where}: edge target {name!r}: {field}: {first['msg']}") from None


def targets_in_yaml(path: Path) -> dict[str, EdgeTarget]:
    """The ``EdgeTarget`` documents of a spec file."""
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"cannot read edge targets from {path}: {exc}") from None
    found: dict[str, EdgeTarget] = {}
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            raise InvalidInputError(f"{path}: an EdgeTarget needs metadata.name")
        found[name] = _check(name, doc.get("spec") or {}, str(path))
    return found


def targets_in_pyproject(path: Path) -> dict[str, EdgeTarget]:
    """``[tool.shipyard.edge.targets.<name>]`` tables."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    tables = data.get("tool", {}).get("shipyard", {}).get("edge", {}).get("targets", {})
    return {name: _check(name, body, str(path)) for name, body in tables.items()}


def load_target(name: str, files: list[Path] | None = None) -> EdgeTarget:
    """The target called ``name``: from the given spec files, else ``./shipyard.yaml`` and
    ``./pyproject.toml``."""
    candidates = files if files else [Path("shipyard.yaml"), Path("pyproject.toml")]
    known: dict[str, EdgeTarget] = {}
    for path in candidates:
        if not path.exists():
            if files:
                raise InvalidInputError(f"no such file: {path}")
            continue
        found = targets_in_pyproject(path) if path.suffix == ".toml" else targets_in_yaml(path)
        for key, target in found.items():
            known.setdefault(key, target)
    if name not in known:
        where = ", ".join(str(p) for p in candidates)
        listed = ", ".join(sorted(known)) or "none"
        raise NotFoundError(f"no edge target {name!r} in {where} (declared: {listed})")
    return known[name]
