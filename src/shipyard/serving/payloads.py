"""Request bodies of the two scoring protocols, parsed into typed columns.

MLflow's ``/invocations`` (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``; JSON or CSV) and the Open Inference Protocol v2 ``infer`` request. Both end in
:func:`shipyard.registry.signature.check_columns`, so a request is judged by one set of
rules whichever protocol carries it. Error texts reuse MLflow's wording where users know it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.core.jsonsafe import parse_json
from shipyard.registry.signature import SchemaError, Signature, check_columns

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_HELP = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
OIP_DATATYPES = {
    "BOOL": "b",
    "UINT8": "u",
    "UINT16": "u",
    "UINT32": "u",
    "UINT64": "u",
    "INT8": "i",
    "INT16": "i",
    "INT32": "i",
    "INT64": "i",
    "FP16": "f",
    "FP32": "f",
    "FP64": "f",
    "BYTES": "O",
}


class PayloadTooLargeError(InvalidInputError):
    """The request holds more rows than the deployment accepts."""


@dataclass
class ParsedRequest:
    """Validated columns and what the caller asked of the response."""

    columns: dict[str, np.ndarray[Any, Any]]
    rows: int
    request_id: str | None = None
    outputs: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)


def _load_json(body: bytes) -> Any:
    return parse_json(body)


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise PayloadTooLargeError(
            f"the request holds {rows} rows; this deployment accepts at most {max_rows}",
            rows=rows,
            max_rows=max_rows,
        )


def _rows_to_columns(
    names: list[str], data: Any, signature: Signature, max_rows: int
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    if not isinstance(data, list):
        raise InvalidInputError("'data' must be a list of rows")
    _check_rows(len(data), max_rows)
    if not data:
        raise InvalidInputError("the request holds no rows")
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInputError(
                f"row {i} has {len(row) if isinstance(row, list) else 'no'} values; "
                f"expected {width} (one per column)",
                row=i,
            )
    matrix = np.array(data)
    cols: dict[str, Any]
    if matrix.dtype.kind in "fi" and matrix.ndim == 2:
        # Fast path: an all-numeric request; the column views need no per-value work.
        cols = {n: matrix[:, j] for j, n in enumerate(names)}
    else:
        cols = {n: [row[j] for row in data] for j, n in enumerate(names)}
    return mlflow_columns(signature, cols)


def _positional(signature: Signature, key: str) -> list[str]:
    """The column names rows without names stand for; only a model fitted on an array
    takes them (MLflow refuses unnamed rows for named columns, and so do we: a reordered
    feature would be scored silently)."""
    if signature.input_kind != "tensor":
        raise SchemaError(
            f"Failed to enforce schema: '{key}' holds rows without column names, and this "
            f"model's inputs are named columns ({', '.join(signature.input_names)}); send "
            "dataframe_split with 'columns', dataframe_records or a columnar 'inputs' object"
        )
    return signature.input_names


_NUMERIC_TYPES = ("double", "float", "long", "integer")


def _number_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            return value
    return value


def mlflow_columns(
    signature: Signature, columns: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """Columns of an ``/invocations`` request judged as MLflow's scoring server does:
    columns the signature does not name are dropped (pandas' unnamed index column among
    them) and numbers sent as strings are read as numbers; everything else as
    :func:`check_columns` rules (a missing column, a wrong type, a null are refused)."""
    known = set(signature.input_names)
    types = {c.name: c.type for c in signature.inputs}
    kept: dict[str, Any] = {}
    for name, values in columns.items():
        if name not in known:
            continue
        if types[name] in _NUMERIC_TYPES and isinstance(values, list):
            values = [_number_or_text(v) for v in values]
        kept[name] = values
    return check_columns(signature, kept)


def parse_invocations(
    body: bytes, content_type: str, signature: Signature, max_rows: int
) -> ParsedRequest:
    """Parse an MLflow scoring request (JSON or CSV)."""
    media = content_type.split(";")[0].strip().lower()
    if media == "text/csv":
        return _parse_csv(body, signature, max_rows)
    if media in PARQUET_TYPES:
        return _parse_parquet(body, signature, max_rows)
    if media not in ("application/json", ""):
        raise UnsupportedMediaError(
            "This predictor only supports the following content types: Types: "
            f"['text/csv', 'application/json', 'application/vnd.apache.parquet']. Got '{media}'."
        )
    doc = _load_json(body)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{_FORMAT_HELP}. Received a {type(doc).__name__}.")
    keys = [k for k in MLFLOW_KEYS if k in doc]
    if len(keys) != 1:
        raise InvalidInputError(
            f"{_FORMAT_HELP}. Received dictionary with input fields: {list(doc)}"
        )
    extra = set(doc) - {keys[0], "params"}
    if extra:
        raise InvalidInputError(f"unexpected fields in the request: {sorted(extra)}")
    key, value = keys[0], doc[keys[0]]
    names = signature.input_names
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise InvalidInputError("'dataframe_split' must be an object with 'columns' and 'data'")
        columns = value["columns"] if "columns" in value else _positional(signature, key)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInputError("'columns' must be a list of column names")
        missing = [n for n in names if n not in columns]
        if missing:  # name exactly what is missing before looking at any row
            check_columns(signature, {c: [] for c in columns if c in set(names)})
        cols, rows = _rows_to_columns(columns, value["data"], signature, max_rows)
    elif key == "dataframe_records" or (
        key in ("instances", "inputs")
        and isinstance(value, list)
        and value
        and isinstance(value[0], dict)
    ):
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInputError(f"'{key}' must be a list of objects (one per row)")
        _check_rows(len(value), max_rows)
        seen: list[str] = []
        for record in value:
            for k in record:
                if k not in seen:
                    seen.append(k)
        raw = {c: [r.get(c) for r in value] for c in seen}
        cols, rows = mlflow_columns(signature, raw)
    elif key == "instances":
        if not isinstance(value, list):
            raise InvalidInputError("'instances' must be a list of rows")
        cols, rows = _rows_to_columns(_positional(signature, key), value, signature, max_rows)
    else:  # inputs: columnar {col: [values]} or a list of rows (tensor)
        if isinstance(value, dict):
            lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
            _check_rows(max(lengths, default=0), max_rows)
            cols, rows = mlflow_columns(signature, value)
        elif isinstance(value, list):
            cols, rows = _rows_to_columns(_positional(signature, key), value, signature, max_rows)
        else:
            raise InvalidInputError("'inputs' must be an object of columns or a list of rows")
    return ParsedRequest(cols, rows, parameters=doc.get("params") or {})


class UnsupportedMediaError(InvalidInputError):
    """The body is neither JSON nor CSV (HTTP 415, as MLflow answers)."""


def _parse_csv(body: bytes, signature: Signature, max_rows: int) -> ParsedRequest:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaError("CSV bodies must be UTF-8") from exc
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError("the request body is empty") from None
    rows = list(reader)
    _check_rows(len(rows), max_rows)
    types = {c.name: c.type for c in signature.inputs}
    converted: dict[str, list[Any]] = {h: [] for h in header}
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise InvalidInputError(
                f"CSV row {i + 1} has {len(row)} fields; header has {len(header)}"
            )
        for name, cell in zip(header, row, strict=True):
            if name in types:  # other columns (pandas' index among them) are dropped
                converted[name].append(_csv_cell(cell, types[name], name))
    cols, n = mlflow_columns(signature, {k: v for k, v in converted.items() if k in types})
    return ParsedRequest(cols, n)


#: Parquet bodies, as MLflow's scoring server takes them.
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")


def _parse_parquet(body: bytes, signature: Signature, max_rows: int) -> ParsedRequest:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInputError(f"the body is not a readable Parquet file: {exc}") from None
    _check_rows(table.num_rows, max_rows)
    wanted = [n for n in table.column_names if n in set(signature.input_names)]
    columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in wanted}
    cols, n = mlflow_columns(signature, columns)
    return ParsedRequest(cols, n)


def _csv_cell(cell: str, kind: str, name: str) -> Any:
    if cell == "":
        return None
    if kind in ("double", "float"):
        try:
            return float(cell)
        except ValueError:
            raise InvalidInputError(
                f"column {name!r} expects {kind} values; got {cell[:40]!r}", column=name
            ) from None
    if kind in ("long", "integer"):
        try:
            return int(cell)
        except ValueError:
            raise InvalidInputError(
                f"column {name!r} expects {kind} values; got {cell[:40]!r}", column=name
            ) from None
    if kind == "boolean":
        word = cell.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise InvalidInputError(
            f"column {name!r} expects boolean values (true/false, 1/0, yes/no); got {cell[:40]!r}",
            column=name,
        )
    return cell


_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


#: NumPy types of the binary tensor extension's raw data (little-endian, row-major).
_BINARY_DTYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def _binary_tensor(raw: bytes, datatype: str, name: str) -> np.ndarray[Any, Any]:
    """One tensor's raw bytes: fixed-size values, or BYTES as 4-byte lengths + bytes."""
    if datatype != "BYTES":
        dtype = np.dtype(_BINARY_DTYPES[datatype])
        if len(raw) % dtype.itemsize:
            raise InvalidInputError(
                f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} values"
            )
        return np.frombuffer(raw, dtype=dtype)
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise InvalidInputError(f"input {name!r}: a BYTES element's length is cut short")
        size = int.from_bytes(raw[at : at + 4], "little")
        at += 4
        if at + size > len(raw):
            raise InvalidInputError(f"input {name!r}: a BYTES element runs past the data")
        items.append(raw[at : at + size].decode("utf-8", "replace"))
        at += size
    return np.array(items, dtype=object)


def _binary_inputs(doc: dict[str, Any], rest: bytes) -> None:
    """Fill ``data`` of the inputs that carry ``binary_data_size``, in order, from ``rest``."""
    at = 0
    for tensor in doc.get("inputs") or []:
        if not isinstance(tensor, dict):
            continue
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or at + size > len(rest):
            raise InvalidInputError(
                f"input {tensor.get('name')!r}: binary_data_size {size!r} does not fit the "
                f"{len(rest)} bytes after the header"
            )
        datatype = tensor.get("datatype")
        if datatype not in OIP_DATATYPES:
            raise InvalidInputError(
                f"input {tensor.get('name')!r}: datatype {datatype!r} is not an Open "
                "Inference Protocol type"
            )
        tensor["data"] = _binary_tensor(rest[at : at + size], datatype, str(tensor.get("name")))
        at += size
    if at != len(rest):
        raise InvalidInputError(
            f"{len(rest) - at} bytes after the header belong to no input's binary_data_size"
        )


def parse_oip(
    body: bytes, signature: Signature, max_rows: int, *, header_length: int | None = None
) -> ParsedRequest:
    """Parse an Open Inference Protocol v2 infer request.

    Accepts one tensor per signature column (shape ``[n]`` or ``[n, 1]``), or a single
    2-D tensor ``[n, k]`` whose k columns are the signature's, in order. With
    ``header_length`` (the ``Inference-Header-Content-Length`` of the binary tensor
    extension) the JSON is that many bytes and the tensors' raw data follows it.
    """
    if header_length is not None:
        if header_length > len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length is {header_length} but the body has "
                f"{len(body)} bytes"
            )
        doc = _load_json(body[:header_length])
        if isinstance(doc, dict):
            _binary_inputs(doc, body[header_length:])
    else:
        doc = _load_json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidInputError("an infer request is an object with a non-empty 'inputs' list")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("'id' must be a string")
    outputs = []
    for out in doc.get("outputs") or []:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidInputError("each entry of 'outputs' needs a 'name'")
        outputs.append(out["name"])
    tensors: dict[str, Any] = {}
    for tensor in doc["inputs"]:
        if not isinstance(tensor, Mapping):
            raise InvalidInputError("each input tensor is an object")
        for key in ("name", "shape", "datatype", "data"):
            if key not in tensor:
                raise InvalidInputError(f"an input tensor lacks {key!r}")
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if datatype not in OIP_DATATYPES:
            raise InvalidInputError(
                f"input {name!r}: datatype {datatype!r} is not an Open Inference Protocol type"
            )
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise InvalidInputError(f"input {name!r}: shape must be a list of sizes")
        data = (
            tensor["data"]
            if isinstance(tensor["data"], np.ndarray)
            else np.array(tensor["data"], dtype=object if datatype == "BYTES" else None)
        )
        size = int(np.prod(shape)) if shape else 1
        if data.size != size:
            raise InvalidInputError(
                f"input {name!r}: shape {shape} holds {size} values but data has {data.size}"
            )
        _check_rows(shape[0] if shape else 1, max_rows)
        tensors[name] = (data.reshape(shape), datatype)
    names = signature.input_names
    if len(tensors) == 1 and len(names) > 1:
        ((name, (data, datatype)),) = tensors.items()
        if data.ndim != 2 or data.shape[1] != len(names):
            raise InvalidInputError(
                f"input {name!r} has shape {list(data.shape)}; a single tensor must be "
                f"[rows, {len(names)}] (columns {', '.join(names)}), or send one tensor per column"
            )
        _check_datatypes(signature, {n: str(datatype) for n in names})
        columns = {n: data[:, j] for j, n in enumerate(names)}
    else:
        for name, (data, _) in tensors.items():
            if data.ndim == 2 and data.shape[1] == 1:
                tensors[name] = (data.reshape(-1), tensors[name][1])
            elif data.ndim != 1:
                raise InvalidInputError(
                    f"input {name!r} must have shape [rows] or [rows, 1]; got {list(data.shape)}"
                )
        _check_datatypes(signature, {n: dt for n, (_, dt) in tensors.items()})
        columns = {n: d for n, (d, _) in tensors.items()}
    cols, rows = check_columns(signature, columns)
    return ParsedRequest(cols, rows, request_id, outputs, parameters=doc.get("parameters") or {})


def _check_datatypes(signature: Signature, datatypes: Mapping[str, str]) -> None:
    for spec in signature.inputs:
        given = datatypes.get(spec.name)
        if given is None:
            continue
        kind = OIP_DATATYPES[given]
        numeric = spec.type in ("double", "float", "long", "integer")
        ok = (
            (numeric and kind in "fiu" and not (spec.type in ("long", "integer") and kind == "f"))
            or (spec.type == "boolean" and kind == "b")
            or (spec.type in ("string", "binary", "datetime") and kind == "O")
        )
        if not ok:
            raise InvalidInputError(
                f"input {spec.name!r} has datatype {given}; the signature says {spec.type} "
                f"({spec.oip_datatype})",
                column=spec.name,
            )


def oip_tensor(name: str, values: np.ndarray[Any, Any]) -> dict[str, Any]:
    """An output tensor of an infer response."""
    kind = values.dtype.kind
    datatype = {"f": "FP64" if values.dtype.itemsize == 8 else "FP32", "b": "BOOL"}.get(
        kind, "INT64" if kind in "iu" else "BYTES"
    )
    data = values.tolist() if kind != "O" else [str(v) for v in values.reshape(-1)]
    if kind != "O" and values.ndim > 1:
        data = values.reshape(-1).tolist()
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data}


def predictions_json(values: np.ndarray[Any, Any]) -> bytes:
    """MLflow's ``{"predictions": [...]}`` body."""
    return json.dumps({"predictions": values.tolist()}).encode()
