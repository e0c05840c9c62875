"""Model signatures in MLflow's form: named, typed columns (or one tensor) in and out.

One :class:`Signature` drives three surfaces so they cannot disagree: the ``MLmodel`` file,
the Open Inference Protocol metadata, and the request validation of the model server.
Types follow MLflow's ``ColSpec`` names (double, float, long, integer, boolean, string,
binary, datetime); a tensor input (a plain NumPy array) becomes one column per feature
named ``f0..fN`` so both surfaces still see columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError

# MLflow ColSpec type -> (NumPy dtype used at predict time, OIP datatype)
COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "double": ("float64", "FP64"),
    "float": ("float32", "FP32"),
    "long": ("int64", "INT64"),
    "integer": ("int32", "INT32"),
    "boolean": ("bool", "BOOL"),
    "string": ("object", "BYTES"),
    "binary": ("object", "BYTES"),
    "datetime": ("datetime64[ns]", "BYTES"),
}
_NUMERIC = {"double", "float", "long", "integer"}


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named, typed column; ``allow_missing`` says whether NaN/None may appear in it."""

    name: str
    type: str
    allow_missing: bool = False

    @property
    def oip_datatype(self) -> str:
        """The Open Inference Protocol datatype of this column."""
        return COLUMN_TYPES[self.type][1]

    def to_mlflow(self) -> dict[str, Any]:
        """MLflow's JSON form (``required`` is the negation of ``allow_missing``)."""
        return {"type": self.type, "name": self.name, "required": not self.allow_missing}


class SchemaError(InvalidInputError):
    """A request's columns do not fit the model's signature (MLflow's
    ``INVALID_PARAMETER_VALUE``, where a body that does not parse is ``BAD_REQUEST``)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """Named input columns and output columns of a model."""

    inputs: tuple[ColSpec, ...]
    outputs: tuple[ColSpec, ...] = field(default_factory=tuple)
    # "dataframe" when the model was fitted on a DataFrame (it gets one back at predict
    # time), "tensor" when it was fitted on an array (it gets a 2-D array).
    input_kind: str = "dataframe"

    @property
    def input_names(self) -> list[str]:
        """Input column names in order."""
        return [c.name for c in self.inputs]

    def to_mlflow(self) -> dict[str, Any]:
        """The ``signature`` block of an ``MLmodel`` file (inputs/outputs as JSON strings).

        A model fitted on an array gets MLflow's tensor form (``[-1, n]`` of one dtype), so
        MLflow's scoring server takes the rows it takes; reading it back gives f0..fN.
        """
        types = {c.type for c in self.inputs}
        dtype = _DTYPE_OF_TYPE.get(next(iter(types))) if len(types) == 1 else None
        inputs: list[dict[str, Any]] = [c.to_mlflow() for c in self.inputs]
        if self.input_kind == "tensor" and dtype is not None:
            inputs = [
                {"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": [-1, len(inputs)]}}
            ]
        return {
            "inputs": json.dumps(inputs),
            "outputs": json.dumps([c.to_mlflow() for c in self.outputs]) if self.outputs else None,
            "params": None,
            "shipyard_input_kind": self.input_kind,
        }

    @classmethod
    def from_mlflow(cls, data: Mapping[str, Any]) -> Signature:
        """Read the ``signature`` block of an ``MLmodel`` file."""

        def cols(raw: Any) -> tuple[ColSpec, ...]:
            if not raw:
                return ()
            items = json.loads(raw) if isinstance(raw, str) else raw
            out: list[ColSpec] = []
            for i, item in enumerate(items):
                kind = item.get("type")
                if kind == "tensor":  # MLflow TensorSpec: expand to f0..fN columns
                    tensor = item.get("tensor-spec", {})
                    shape = tensor.get("shape", [-1, 1])
                    dtype = _TENSOR_DTYPES.get(tensor.get("dtype", "float64"), "double")
                    width = shape[-1] if len(shape) > 1 and shape[-1] > 0 else 1
                    out.extend(ColSpec(f"f{j}", dtype) for j in range(width))
                    continue
                if kind not in COLUMN_TYPES:
                    raise InvalidInputError(f"signature column type {kind!r} is not supported")
                out.append(ColSpec(item.get("name", f"f{i}"), kind, not item.get("required", True)))
            return tuple(out)

        raw = data.get("inputs")
        items = json.loads(raw) if isinstance(raw, str) else raw or []
        tensor = any(isinstance(i, Mapping) and i.get("type") == "tensor" for i in items)
        return cls(
            cols(raw),
            cols(data.get("outputs")),
            data.get("shipyard_input_kind", "tensor" if tensor else "dataframe"),
        )


_DTYPE_OF_TYPE = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}
_TENSOR_DTYPES = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
}


def _column_type(values: np.ndarray[Any, Any]) -> str:
    kind = values.dtype.kind
    if kind == "f":
        return "float" if values.dtype.itemsize == 4 else "double"
    if kind in "iu":
        return "integer" if values.dtype.itemsize <= 4 and kind == "i" else "long"
    if kind == "b":
        return "boolean"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    return "string"


def _has_missing(values: np.ndarray[Any, Any]) -> bool:
    if values.dtype.kind == "f":
        return bool(np.isnan(values).any())
    if values.dtype.kind == "O":
        return any(v is None or (isinstance(v, float) and v != v) for v in values)
    return False


def example_columns(example: Any) -> tuple[dict[str, np.ndarray[Any, Any]], str]:
    """Split an input example into named 1-D columns and say whether it was a frame."""
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        return {str(c): example[c].to_numpy() for c in example.columns}, "dataframe"
    if isinstance(example, Mapping):
        return {str(k): np.asarray(v) for k, v in example.items()}, "dataframe"
    array = np.asarray(example)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInputError(
            f"input_example must be a DataFrame or a 2-D array; got {array.ndim} dimensions"
        )
    return {f"f{j}": array[:, j] for j in range(array.shape[1])}, "tensor"


def infer_signature(example: Any, output: Any = None) -> Signature:
    """Infer a signature from an input example (and optionally the model's output on it)."""
    columns, kind = example_columns(example)
    if not columns:
        raise InvalidInputError("input_example has no columns")
    inputs = tuple(ColSpec(n, _column_type(v), _has_missing(v)) for n, v in columns.items())
    outputs: tuple[ColSpec, ...] = ()
    if output is not None:
        out = np.asarray(output)
        if out.ndim <= 1:
            outputs = (ColSpec("prediction", _column_type(out.reshape(-1))),)
        else:
            outputs = tuple(
                ColSpec(f"prediction_{j}", _column_type(out[:, j])) for j in range(out.shape[1])
            )
    return Signature(inputs, outputs, kind)


def check_columns(
    signature: Signature, columns: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]]
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """Validate request columns against the signature; return typed arrays and the row count.

    Refuses a missing or extra column, columns of unequal length, a value that is not of
    the column's type, and a missing value (None/NaN) where the signature forbids it. Every
    message names the column, so a caller can fix the request without reading our code.
    """
    expected = signature.input_names
    missing = [n for n in expected if n not in columns]
    if missing:
        raise SchemaError(
            f"missing input column(s): {', '.join(missing)}", missing=missing, expected=expected
        )
    extra = [n for n in columns if n not in set(expected)]
    if extra:
        raise SchemaError(
            f"unexpected input column(s): {', '.join(extra)}", extra=extra, expected=expected
        )
    typed: dict[str, np.ndarray[Any, Any]] = {}
    rows = -1
    for spec in signature.inputs:
        values = _typed(spec, columns[spec.name])
        if rows == -1:
            rows = len(values)
        elif len(values) != rows:
            raise SchemaError(
                f"column {spec.name!r} has {len(values)} values, others have {rows}",
                column=spec.name,
            )
        typed[spec.name] = values
    if rows <= 0:
        raise SchemaError("the request holds no rows")
    return typed, rows


def _typed(spec: ColSpec, raw: Sequence[Any] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    dtype = COLUMN_TYPES[spec.type][0]
    if isinstance(raw, np.ndarray) and raw.ndim != 1:
        raw = raw.reshape(-1)
    if spec.type in _NUMERIC:
        array = np.asarray(raw)
        if array.ndim != 1:
            raise SchemaError(
                f"column {spec.name!r} must be a flat list of values", column=spec.name
            )
        kind = array.dtype.kind
        if kind == "O":  # None mixed with numbers, or strings
            if any(isinstance(v, str | bytes | bool | list | dict) for v in array):
                raise SchemaError(
                    f"column {spec.name!r} expects {spec.type} values; got a non-number",
                    column=spec.name,
                )
            array = np.array([np.nan if v is None else v for v in array], dtype="float64")
            kind = "f"
        elif kind in "USb":
            raise SchemaError(
                f"column {spec.name!r} expects {spec.type} values; got "
                f"{'booleans' if kind == 'b' else 'strings'}",
                column=spec.name,
            )
        if kind == "f" and np.isnan(array).any():
            if not spec.allow_missing:
                # MLflow passes the null on and the model fails on it (BAD_REQUEST): we refuse
                # it before the model runs, with the same code.
                raise InvalidInputError(
                    f"column {spec.name!r} holds a missing value (NaN or null), which the "
                    "signature does not allow",
                    column=spec.name,
                )
            if spec.type in ("long", "integer"):
                raise SchemaError(
                    f"column {spec.name!r} is {spec.type} and cannot hold a missing value",
                    column=spec.name,
                )
        if (kind == "f" and spec.type in ("long", "integer")) and (
            not np.all(np.isfinite(array)) or not np.all(array == np.floor(array))
        ):
            raise SchemaError(
                f"column {spec.name!r} expects {spec.type} values; got a fraction",
                column=spec.name,
            )
        try:
            return array.astype(dtype, copy=False)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SchemaError(
                f"column {spec.name!r} expects {spec.type} values: {exc}", column=spec.name
            ) from exc
    if spec.type == "boolean":
        array = np.asarray(raw)
        if array.dtype.kind != "b":
            raise SchemaError(f"column {spec.name!r} expects boolean values", column=spec.name)
        return array
    values = list(raw)
    for v in values:
        if v is None:
            if not spec.allow_missing:
                # MLflow passes the null on and the model fails on it (BAD_REQUEST): we refuse
                # it before the model runs, with the same code.
                raise InvalidInputError(
                    f"column {spec.name!r} holds a missing value, which the signature "
                    "does not allow",
                    column=spec.name,
                )
        elif not isinstance(v, str | bytes):
            raise SchemaError(
                f"column {spec.name!r} expects {spec.type} values; got {type(v).__name__}",
                column=spec.name,
            )
    if spec.type == "datetime":
        try:
            return np.array(values, dtype="datetime64[ns]")
        except ValueError as exc:
            raise SchemaError(
                f"column {spec.name!r} expects datetimes: {exc}", column=spec.name
            ) from exc
    return np.array(values, dtype=object)
