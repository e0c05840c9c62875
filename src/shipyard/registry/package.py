"""Model packages: an MLflow-style folder (``MLmodel`` + native file + ONNX + environment).

MLflow users and tools recognise the layout and load it with MLflow alone:
``python_function.loader_module`` is MLflow's own module for the flavour (``mlflow.sklearn``,
``mlflow.xgboost``, ``mlflow.onnx``), each flavour carries MLflow's keys beside Shipyard's,
and ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` list what it needs. Only
flavours MLflow has no loader for (LightGBM boosters saved as text, generic Python objects)
point at :mod:`shipyard.registry.pyfunc`, and then shipyard is a requirement.
:class:`LoadedModel` is what ``load_model`` returns and what the model server calls: one
object, native or ONNX underneath.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.hashing import sha256_file
from shipyard.core.ids import new_id
from shipyard.registry import flavors as fl
from shipyard.registry.flavors.onnx import OnnxModel
from shipyard.registry.onnx_convert import Conversion, convert
from shipyard.registry.signature import Signature, example_columns, infer_signature

MLMODEL = "MLmodel"
# Distributions whose versions describe a model's environment (only installed ones count).
_ENV_DISTS = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "skops",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "shipyard",
)


def _requirements(names: list[str], env: dict[str, str]) -> list[str]:
    """What a plain environment needs to load these flavours (the ONNX file adds onnx and
    onnxruntime)."""
    needed = {dist for name in names for dist in fl.flavor_kind(name).needs}
    return [f"{k}=={v}" for k, v in env.items() if k in needed]


def environment() -> dict[str, str]:
    """Python and the versions of the packages a model may need."""
    env = {"python": platform.python_version()}
    for dist in _ENV_DISTS:
        version = fl.package_version(dist)
        if version:
            env[dist] = version
    return env


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """What ``save_package`` wrote: flavours, signature, environment, file hashes."""

    flavors: list[str]
    signature: Signature
    environment: dict[str, str]
    files: dict[str, str]
    conversion: Conversion | None
    mlmodel: dict[str, Any]


def _example_matrix(example: Any) -> tuple[Any, np.ndarray[Any, Any]]:
    """The example as the model expects it (frame or array) and as a 2-D numeric matrix."""
    import pandas as pd

    columns, kind = example_columns(example)
    frame_or_array: Any = (
        example
        if isinstance(example, pd.DataFrame | np.ndarray)
        else (
            pd.DataFrame(columns)
            if kind == "dataframe"
            else np.column_stack(list(columns.values()))
        )
    )
    if isinstance(frame_or_array, np.ndarray) and frame_or_array.ndim == 1:
        frame_or_array = frame_or_array.reshape(1, -1)
    try:
        matrix = np.column_stack([np.asarray(v) for v in columns.values()])
    except ValueError:
        matrix = np.empty((0, 0), dtype=object)
    return frame_or_array, matrix


def save_package(
    model: Any,
    folder: Path,
    *,
    input_example: Any,
    run_id: str,
    artifact_path: str,
    signature: Signature | None = None,
    convert_onnx: bool = True,
) -> PackageInfo:
    """Write ``model`` as a package into the empty ``folder``."""
    if input_example is None:
        raise InvalidInputError(
            "input_example is required: the signature (columns and types) is inferred from "
            "it and every request is checked against it"
        )
    kind = fl.detect_flavor(model)
    example, matrix = _example_matrix(input_example)
    if len(matrix) == 0:
        raise InvalidInputError("input_example must hold at least one row")
    try:
        output = model.predict(example) if kind != "onnx" else None
    except Exception as exc:
        raise InvalidInputError(
            f"the model cannot predict its own input_example: {type(exc).__name__}: {exc}"
        ) from exc
    sig = signature or infer_signature(input_example, output)
    flavor = fl.save_flavor(model, kind, folder)
    flavors: dict[str, Any] = {
        "python_function": {
            "loader_module": fl.flavor_kind(kind).mlflow_loader or "shipyard.registry.pyfunc",
            "python_version": platform.python_version(),
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "model_path": flavor.conf["model_file"],
            "predict_fn": "predict",
        },
        flavor.name: {**flavor.conf, **fl.flavor_kind(kind).mlflow_keys(flavor.conf)},
    }
    conversion = None
    if convert_onnx and fl.flavor_kind(kind).to_onnx is not None:
        conversion = convert(
            model,
            kind,
            (matrix.astype("float32", copy=False) if matrix.dtype.kind in "fiub" else matrix),
            folder,
            example,
        )
        if conversion.converted:
            flavors["onnx"] = {
                **conversion.conf,
                **fl.flavor_kind("onnx").mlflow_keys(conversion.conf),
            }
    env = environment()
    requirements = _requirements([f for f in flavors if f != "python_function"], env)
    (folder / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (folder / "python_env.yaml").write_text(
        yaml.safe_dump(
            {
                "python": env["python"],
                "build_dependencies": ["pip"],
                "dependencies": ["-r requirements.txt"],
            },
            sort_keys=False,
        )
    )
    (folder / "conda.yaml").write_text(
        yaml.safe_dump(
            {
                "channels": ["conda-forge"],
                "dependencies": [f"python={env['python']}", "pip", {"pip": requirements}],
                "name": "shipyard-model-env",
            },
            sort_keys=False,
        )
    )
    columns, _ = example_columns(input_example)
    example_doc = {
        "columns": list(columns),
        "data": np.column_stack([np.asarray(v, dtype=object) for v in columns.values()]).tolist(),
    }
    (folder / "input_example.json").write_text(json.dumps(example_doc, default=_json_default))
    mlmodel: dict[str, Any] = {
        "artifact_path": artifact_path,
        "flavors": flavors,
        "model_uuid": new_id("mdl").split("_", 1)[1],
        "run_id": run_id,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": sig.to_mlflow(),
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        },
        "shipyard": {
            "flavor": kind,
            "onnx": None
            if conversion is None
            else {"converted": conversion.converted, "reason": conversion.reason},
        },
    }
    (folder / MLMODEL).write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    files = {
        str(p.relative_to(folder)): sha256_file(p)[0]
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    return PackageInfo(
        [f for f in flavors if f != "python_function"], sig, env, files, conversion, mlmodel
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def read_mlmodel(folder: Path) -> dict[str, Any]:
    """Parse the ``MLmodel`` file of a package folder."""
    path = folder / MLMODEL
    if not path.is_file():
        raise StoreError(f"{folder} is not a model package (no MLmodel file)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StoreError(f"the MLmodel file of {folder} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise StoreError(f"the MLmodel file of {folder} has no flavors")
    return data


class LoadedModel:
    """A registered model ready to predict: the native model, or its verified ONNX twin."""

    def __init__(
        self,
        native: Any,
        flavor: str,
        signature: Signature,
        metadata: dict[str, Any],
        onnx: OnnxModel | None = None,
    ) -> None:
        self.native = native
        self.flavor = flavor
        self.signature = signature
        self.metadata = metadata
        self.onnx = onnx
        self._names = signature.input_names

    @property
    def uses_onnx(self) -> bool:
        """Whether ``infer`` runs on ONNX Runtime."""
        return self.onnx is not None

    def _as_input(self, X: Any) -> Any:
        import pandas as pd

        if self.flavor == "onnx":
            return _matrix(X)
        if self.signature.input_kind == "dataframe" and not isinstance(X, pd.DataFrame):
            if isinstance(X, dict):
                return pd.DataFrame(X)
            return pd.DataFrame(np.asarray(X), columns=self._names)
        if self.signature.input_kind == "tensor" and isinstance(X, pd.DataFrame):
            return X.to_numpy()
        return X

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Predictions of the native model (the ONNX twin is used by ``infer``)."""
        return np.asarray(self.native.predict(self._as_input(X)))

    def infer(self, columns: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """Outputs for validated columns: ``predict`` and, for classifiers, ``predict_proba``.

        The serving hot path: ONNX Runtime on a float32 matrix where a verified conversion
        exists, the native model otherwise.
        """
        if self.onnx is not None:
            matrix = np.column_stack([columns[n] for n in self._names]).astype("float32")
            label, proba = self.onnx.run(matrix)
            out = {"predict": label}
            if proba is not None:
                out["predict_proba"] = proba
            return out
        if self.signature.input_kind == "dataframe" and self.flavor not in ("onnx",):
            import pandas as pd

            X: Any = pd.DataFrame({n: columns[n] for n in self._names})
        else:
            X = np.column_stack([columns[n] for n in self._names])
        result = {"predict": np.asarray(self.native.predict(X))}
        if hasattr(self.native, "predict_proba"):
            result["predict_proba"] = np.asarray(self.native.predict_proba(X))
        return result

    def __repr__(self) -> str:
        engine = "onnxruntime" if self.onnx is not None else self.flavor
        return f"<LoadedModel {self.flavor} via {engine}: {', '.join(self._names[:5])}...>"


class LoadedClassifier(LoadedModel):
    """A loaded model that also gives class probabilities."""

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities of the native model."""
        return np.asarray(self.native.predict_proba(self._as_input(X)))


def _matrix(X: Any) -> np.ndarray[Any, Any]:
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype="float32")
    return np.asarray(X, dtype="float32")


def native_kind(mlmodel: dict[str, Any]) -> str:
    """The flavour a package is loaded with, which its MLmodel must describe."""
    flavors = mlmodel["flavors"]
    kind = (mlmodel.get("shipyard") or {}).get("flavor") or next(
        (f for f in flavors if f not in ("python_function", "onnx")), "onnx"
    )
    fl.flavor_kind(str(kind))  # an unknown one is bad input naming those there are
    if not isinstance(flavors.get(kind), dict):
        raise StoreError(f"the MLmodel file names flavour {kind!r} but does not describe it")
    return str(kind)


def check_package(folder: Path, mlmodel: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check what loading a package would build (registration calls this on uploads).

    Returns the native flavour and what the checks found (the skops types to trust).

    Raises:
        UnsafeModelError: a flavour asks for a type, class or file outside the rules.
    """
    kind = native_kind(mlmodel)
    found = fl.check_flavor(fl.Flavor(kind, mlmodel["flavors"][kind]), folder)
    onnx = mlmodel["flavors"].get("onnx")
    if kind != "onnx" and isinstance(onnx, dict) and _onnx_runtime_present():
        fl.check_flavor(fl.Flavor("onnx", onnx), folder)
    return kind, found


def load_package(
    folder: Path, *, trusted: bool = False, expected_files: dict[str, str] | None = None
) -> LoadedModel:
    """Load a package folder; every file recorded at registration must hash the same."""
    if expected_files:
        for name, digest in expected_files.items():
            path = folder / name
            if not path.is_file():
                raise StoreError(f"model file {name} is missing; refusing to load", file=name)
            if sha256_file(path)[0] != digest:
                raise StoreError(
                    f"model file {name} does not match the hash recorded at registration; "
                    "refusing to load",
                    file=name,
                )
    mlmodel = read_mlmodel(folder)
    signature = Signature.from_mlflow(mlmodel.get("signature") or {})
    flavors = mlmodel["flavors"]
    kind = native_kind(mlmodel)
    native = fl.load_flavor(fl.Flavor(kind, flavors[kind]), folder, trusted=trusted)
    onnx = None
    if kind != "onnx" and "onnx" in flavors and _onnx_runtime_present():
        onnx = fl.load_flavor(fl.Flavor("onnx", flavors["onnx"]), folder)
    elif kind == "onnx":
        onnx = native
    cls = LoadedClassifier if hasattr(native, "predict_proba") else LoadedModel
    return cls(native, kind, signature, mlmodel, onnx)


def _onnx_runtime_present() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
