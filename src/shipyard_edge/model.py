"""A verified bundle ready to predict on a device: ONNX Runtime and NumPy, nothing more.

Rows come as dicts of column values (strings for categories, as the platform saw them), a
dict of columns, or a matrix already in the bundle's column order. Categories are encoded
with the levels the bundle carries; an unknown level is a missing value, as the native
model treats it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard_edge.bundle import COLUMNS, MODEL, Bundle, BundleError, verify


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model said for a batch of rows, and how long it took."""

    label: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None
    latency_seconds: float

    @property
    def score(self) -> np.ndarray[Any, Any]:
        """One number per row: the positive class's probability for a binary classifier,
        the label (or value) otherwise."""
        if self.probabilities is not None and self.probabilities.shape[1] == 2:
            return self.probabilities[:, 1]
        return self.label


class EdgeModel:
    """A bundle's model, loaded from memory after its signature and hashes were checked."""

    def __init__(self, bundle: Bundle, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.bundle = bundle
        spec = bundle.columns
        self.columns: list[dict[str, Any]] = list(spec["columns"])
        self.names = [c["name"] for c in self.columns]
        self.task = str(spec.get("task", "binary"))
        self.classes = spec.get("classes")
        self.input_name = str(spec["input"]["name"])
        self.dtype = np.dtype(spec["input"]["dtype"])
        self.outputs: list[str] = list(spec["outputs"])
        self._levels = {
            c["name"]: {str(v): float(i) for i, v in enumerate(c.get("levels") or [])}
            for c in self.columns
            if c["kind"] == "category"
        }
        options = ort.SessionOptions()
        budget = bundle.manifest.get("target") or {}
        options.intra_op_num_threads = int(threads or budget.get("threads") or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            bundle.files[MODEL], options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def open(
        cls, path: str | Path, trusted: Mapping[str, Any], *, threads: int | None = None
    ) -> EdgeModel:
        """Verify the bundle at ``path`` against ``trusted`` keys and load it."""
        return cls(verify(path, trusted), threads=threads)

    @property
    def bundle_id(self) -> str:
        """The running bundle."""
        return self.bundle.bundle_id

    @property
    def model(self) -> tuple[str, str]:
        """(registered model name, version) the bundle was exported from."""
        source = self.bundle.manifest.get("model") or {}
        return str(source.get("name", "")), str(source.get("version", ""))

    def encode(self, rows: Any) -> np.ndarray[Any, Any]:
        """The model's input matrix for ``rows`` (see the module docstring)."""
        return encode(self.columns, rows, self.dtype, self._levels)

    def predict(self, rows: Any) -> Prediction:
        """Predict ``rows``; the latency covers encoding and inference."""
        started = time.perf_counter()
        matrix = self.encode(rows)
        out = self._session.run(self.outputs, {self.input_name: matrix})
        label = np.asarray(out[0]).reshape(len(matrix), -1)
        label = label[:, 0] if label.shape[1] == 1 else label
        proba = np.asarray(out[1], dtype="float64") if len(out) > 1 else None
        return Prediction(label, proba, time.perf_counter() - started)


def encode(
    columns: list[dict[str, Any]],
    rows: Any,
    dtype: Any = "float32",
    levels: dict[str, dict[str, float]] | None = None,
) -> np.ndarray[Any, Any]:
    """The input matrix of ``rows`` for a bundle's ``columns`` (numbers as floats, booleans
    as 0/1, categories as the index of their level, missing or unknown values as NaN)."""
    dtype = np.dtype(dtype)
    names = [c["name"] for c in columns]
    if isinstance(rows, np.ndarray):
        matrix = np.asarray(rows, dtype=dtype)
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise BundleError(
                f"expected a matrix of {len(names)} columns, got shape {matrix.shape}"
            )
        return matrix
    if levels is None:
        levels = {
            c["name"]: {str(v): float(i) for i, v in enumerate(c.get("levels") or [])}
            for c in columns
            if c["kind"] == "category"
        }
    values = _as_columns(rows, names)
    n = len(values[names[0]]) if names else 0
    matrix = np.empty((n, len(names)), dtype=dtype)
    for j, spec in enumerate(columns):
        column = values[spec["name"]]
        if len(column) != n:
            raise BundleError("every column needs the same number of rows")
        if spec["kind"] == "category":
            known = levels[spec["name"]]
            matrix[:, j] = [np.nan if v is None else known.get(str(v), np.nan) for v in column]
        else:
            try:
                matrix[:, j] = [np.nan if v is None else float(v) for v in column]
            except (TypeError, ValueError):
                raise BundleError(f"column {spec['name']} takes numbers") from None
    return matrix


def _as_columns(rows: Any, names: Sequence[str]) -> dict[str, list[Any]]:
    if isinstance(rows, Mapping):
        missing = [n for n in names if n not in rows]
        if missing:
            raise BundleError(f"missing columns: {', '.join(missing)}")
        return {n: list(rows[n]) for n in names}
    if isinstance(rows, Sequence) and all(isinstance(r, Mapping) for r in rows):
        missing = sorted({n for r in rows for n in names if n not in r})
        if missing:
            raise BundleError(f"missing columns: {', '.join(missing)}")
        return {n: [r[n] for r in rows] for n in names}
    raise BundleError("rows must be dicts of column values, a dict of columns, or a matrix")


__all__ = ["COLUMNS", "EdgeModel", "Prediction", "encode"]
