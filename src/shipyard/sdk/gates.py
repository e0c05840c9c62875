"""The gates API of the SDK: ``check_gates`` and ``drift_report``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.drift.engine import DriftReport
from shipyard.gates.policy import GatePolicy, load_policy, parse_policy
from shipyard.gates.report import GateReport
from shipyard.sdk import context
from shipyard.sdk.registry import actor_name


def read_frame(data: Any, what: str = "data") -> pd.DataFrame:
    """A DataFrame from a DataFrame, or a Parquet / CSV / JSON-lines file path."""
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, str | Path):
        raise InvalidInputError(f"{what} must be a DataFrame or a file path")
    path = Path(data)
    if not path.is_file():
        raise InvalidInputError(f"{what} file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {what} file {path}: {exc}") from None
    raise InvalidInputError(f"{what} file {path}: use .parquet, .csv or .jsonl")


def check_gates(
    name: str,
    version: int | str,
    policy: GatePolicy | dict[str, Any] | str | Path,
    data: Any,
    *,
    reference: Any = None,
    trusted: bool = False,
) -> GateReport:
    """Evaluate a version against a gate policy (object, dict or YAML path); store the report."""
    rules = load_policy(policy) if isinstance(policy, str | Path) else parse_policy(policy)
    frame = read_frame(data, "evaluation data")
    ref = read_frame(reference, "reference data") if reference is not None else None
    backend = context.current().get_backend()
    return backend.gates.evaluate(
        name, version, rules, frame, reference=ref, actor=actor_name(), trusted=trusted
    )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str] | None = None,
    method: str = "auto",
) -> DriftReport:
    """Per-column drift of ``current`` against ``reference`` and the dataset verdict."""
    from shipyard.drift.engine import drift_report as run

    return run(reference, current, columns, method=method)
