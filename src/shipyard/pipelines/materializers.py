"""Materializers turn step outputs into files and back, chosen by type annotation.

Built in: pandas DataFrame and PyArrow Table (Parquet), NumPy arrays (``.npy`` without
pickle), scikit-learn estimators (skops, with the exact types to trust recorded next to the
blob's digest), JSON-able values, bytes and paths. Nothing is ever stored with pickle.
Users add their own with ``MaterializerRegistry.register``.
"""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path
from typing import Any, Protocol

from shipyard.core.errors import PipelineError


class Materializer(Protocol):
    """Save values of some types to one file and load them back."""

    name: str
    version: str

    def handles(self, tp: Any, value: Any = None) -> bool:
        """Whether this materializer can store ``value`` declared as ``tp``."""
        ...

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Write ``value`` to ``path``; return metadata needed to load it (JSON-able)."""
        ...

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """Read the value back."""
        ...


def _is(tp: Any, module: str, name: str) -> bool:
    return isinstance(tp, type) and any(
        c.__module__.startswith(module) and c.__name__ == name for c in tp.__mro__
    )


class DataFrameMaterializer:
    """pandas DataFrames as Parquet, with their schema and a compact profile."""

    name = "pandas.parquet"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """DataFrames."""
        return _is(tp, "pandas", "DataFrame") or _is(type(value), "pandas", "DataFrame")

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Write Parquet; profile the frame for the dataset version."""
        from shipyard.pipelines.profile import profile_frame

        value.to_parquet(path)
        return {"profile": profile_frame(value)}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """Read Parquet."""
        import pandas as pd

        return pd.read_parquet(path)


class ArrowMaterializer:
    """PyArrow Tables as Parquet."""

    name = "pyarrow.parquet"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """pyarrow.Table."""
        return _is(tp, "pyarrow", "Table") or _is(type(value), "pyarrow", "Table")

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Write Parquet."""
        import pyarrow.parquet as pq

        pq.write_table(value, path)
        return {"rows": value.num_rows, "columns": value.column_names}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """Read Parquet."""
        import pyarrow.parquet as pq

        return pq.read_table(path)


class NumpyMaterializer:
    """NumPy arrays as .npy, never with pickled objects."""

    name = "numpy.npy"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """ndarray."""
        return _is(tp, "numpy", "ndarray") or _is(type(value), "numpy", "ndarray")

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """np.save without pickle (object arrays are refused)."""
        import numpy as np

        if value.dtype == object:
            raise PipelineError("numpy arrays of dtype=object cannot be stored without pickle")
        with path.open("wb") as handle:
            np.save(handle, value, allow_pickle=False)
        return {"shape": list(value.shape), "dtype": str(value.dtype)}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """np.load without pickle."""
        import numpy as np

        return np.load(path, allow_pickle=False)


class SkopsMaterializer:
    """scikit-learn estimators with skops; the types to trust are recorded at save time."""

    name = "sklearn.skops"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """Anything with sklearn's BaseEstimator in its classes."""
        return _is(tp, "sklearn", "BaseEstimator") or _is(type(value), "sklearn", "BaseEstimator")

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """skops.io.dump, recording the exact untrusted types it reports."""
        import skops.io as sio

        sio.dump(value, path)
        return {"trusted_types": sorted(sio.get_untrusted_types(file=path))}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """skops.io.load, trusting only allow-listed types found in the blob itself."""
        from shipyard.core.skops_trust import load_skops

        return load_skops(path)


class JsonMaterializer:
    """JSON-able values: None, bool, int, float, str, and lists and dicts of them."""

    name = "json"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """Plain data, by annotation or by value."""
        base = typing.get_origin(tp) or tp
        if base in (int, float, str, bool, dict, list, type(None)):
            return True
        return tp in (Any, None) and _json_able(value)

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """json.dumps (NaN refused: it is not JSON)."""
        try:
            path.write_text(json.dumps(value, allow_nan=False, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"value is not JSON-able: {exc}") from exc
        return {}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """json.loads."""
        return json.loads(path.read_text())


class BytesMaterializer:
    """Raw bytes."""

    name = "bytes"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """bytes."""
        return tp is bytes or isinstance(value, bytes)

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Write as is."""
        path.write_bytes(value)
        return {}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """Read as is."""
        return path.read_bytes()


class PathMaterializer:
    """A file produced by a step: its bytes are stored, a path to a copy comes back."""

    name = "path"
    version = "1"

    def handles(self, tp: Any, value: Any = None) -> bool:
        """pathlib.Path to a file."""
        return _is(tp, "pathlib", "PurePath") or isinstance(value, Path)

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Copy the file."""
        source = Path(value)
        if not source.is_file():
            raise PipelineError(f"path output {str(source)!r} is not a file")
        shutil.copyfile(source, path)
        return {"filename": source.name}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """Return the path of the (temporary) copy."""
        return path


def _json_able(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_json_able(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_able(v) for k, v in value.items())
    return False


class MaterializerRegistry:
    """The materializers a runner may use, tried newest-registered first."""

    def __init__(self) -> None:
        self._items: list[Materializer] = [
            JsonMaterializer(),
            BytesMaterializer(),
            PathMaterializer(),
            NumpyMaterializer(),
            ArrowMaterializer(),
            DataFrameMaterializer(),
            SkopsMaterializer(),
        ]

    def register(self, materializer: Materializer) -> None:
        """Add a user materializer; it takes precedence over the built-ins."""
        self._items.append(materializer)

    def for_value(self, tp: Any, value: Any, step: str, output: str) -> Materializer:
        """The materializer for an output, by annotation first, then by runtime type."""
        for item in reversed(self._items):
            if tp not in (Any, None) and item.handles(tp):
                return item
        for item in reversed(self._items):
            if item.handles(Any, value):
                return item
        raise PipelineError(
            f"step {step!r} output {output!r} of type {type(value).__name__} has no "
            "materializer; return a DataFrame, array, estimator, JSON-able value, bytes or "
            "Path, or register one (shipyard.register_materializer)",
            step=step,
        )

    def fingerprint(self) -> list[str]:
        """Names and versions of every materializer (part of each cache key)."""
        return sorted(f"{m.name}@{m.version}" for m in self._items)

    def by_name(self, name: str) -> Materializer:
        """The materializer that stored an output."""
        for item in reversed(self._items):
            if item.name == name:
                return item
        raise PipelineError(f"no materializer named {name!r} is registered")
