"""Flavours: how each kind of model is written to a package folder and read back safely.

Nothing read from a store reaches ``pickle.load`` unless the caller passes ``trusted=True``:
scikit-learn models use skops with exactly the types recorded at save time (bound to the
file's sha256), XGBoost and LightGBM their own formats, ONNX its protobuf. Only the generic
Python flavour pickles, and it refuses to load untrusted.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pickle
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shipyard.core.errors import InvalidInputError, PermissionDeniedError, StoreError
from shipyard.core.hashing import sha256_file
from shipyard.core.skops_trust import UnsafeModelError, load_skops, trusted_types

logger = logging.getLogger(__name__)


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


#: Every flavour this module reads and writes.
FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx", "python")


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


def _is_from(model: Any, package: str) -> bool:
    return any(k.__module__.split(".")[0] == package for k in type(model).__mro__)


def detect_flavor(model: Any) -> str:
    """The flavour a model object is stored with."""
    if _is_from(model, "onnx") and type(model).__name__ == "ModelProto":
        return "onnx"
    if _is_from(model, "xgboost"):
        return "xgboost"
    if _is_from(model, "lightgbm"):
        return "lightgbm"
    if _is_from(model, "sklearn"):
        return "sklearn"
    if callable(getattr(model, "predict", None)):
        return "python"
    raise InvalidInputError(
        f"cannot register a {type(model).__name__}: it is not a scikit-learn, XGBoost, "
        "LightGBM or ONNX model and has no predict method"
    )


def save_flavor(model: Any, kind: str, folder: Path) -> Flavor:
    """Write ``model`` into ``folder`` in its native format; return its description."""
    if kind == "sklearn":
        import skops.io as sio

        path = folder / "model.skops"
        try:
            sio.dump(model, path)
        except (RecursionError, TypeError, ValueError, AttributeError, NotImplementedError) as exc:
            raise InvalidInputError(
                f"skops cannot store this {type(model).__name__}: {exc}"
            ) from exc
        digest, _ = sha256_file(path)
        return Flavor(
            "sklearn",
            {
                "model_file": path.name,
                "serialization_format": "skops",
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                **_final_step(model),
                "sklearn_version": package_version("scikit-learn"),
                "skops_version": package_version("skops"),
                "sha256": digest,
                # The exact types skops needs trusted for this file, bound to its hash.
                "trusted_types": sorted(sio.get_untrusted_types(file=path)),
            },
        )
    if kind == "xgboost":
        path = folder / "model.ubj"
        model.save_model(path)
        cls = type(model)
        return Flavor(
            "xgboost",
            {
                "model_file": path.name,
                "model_class": f"{cls.__module__}.{cls.__qualname__}",
                "xgb_version": package_version("xgboost"),
                "data": path.name,
            },
        )
    if kind == "lightgbm":
        path = folder / "model.txt"
        booster = getattr(model, "booster_", model)
        booster.save_model(str(path))
        classes = getattr(model, "classes_", None)
        return Flavor(
            "lightgbm",
            {
                "model_file": path.name,
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "lgb_version": package_version("lightgbm"),
                "classes": None if classes is None else np.asarray(classes).tolist(),
            },
        )
    if kind == "onnx":
        path = folder / "model.onnx"
        path.write_bytes(model.SerializeToString())
        return Flavor("onnx", onnx_conf(path))
    if kind == "python":
        return _save_python(model, folder)
    raise InvalidInputError(f"unknown flavour {kind!r}")


def onnx_conf(path: Path) -> dict[str, Any]:
    """The description of an ONNX file: hash, opsets, runtime version."""
    onnx = require_extra("onnx", "onnx")
    proto = onnx.load(str(path))
    digest, _ = sha256_file(path)
    return {
        "model_file": path.name,
        "sha256": digest,
        "onnx_version": package_version("onnx"),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import},
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
    }


def _save_python(model: Any, folder: Path) -> Flavor:
    cls = type(model)
    code_files: list[str] = []
    source = inspect.getsourcefile(cls) if cls.__module__ not in ("__main__",) else None
    if cls.__module__ == "__main__":
        raise InvalidInputError(
            "a Python model class defined in __main__ cannot be loaded elsewhere; "
            "define it in a module"
        )
    if source is not None:
        code = folder / "code"
        code.mkdir()
        shutil.copyfile(source, code / Path(source).name)
        code_files.append(f"code/{Path(source).name}")
    path = folder / "python_model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return Flavor(
        "python",
        {
            "model_file": path.name,
            "serialization_format": "pickle",
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
            "code": code_files,
            "module": cls.__module__,
        },
    )


def load_flavor(flavor: Flavor, folder: Path, *, trusted: bool = False) -> Any:
    """Read a flavour back from ``folder``; pickle only when ``trusted``."""
    conf = flavor.conf
    if flavor.name == "sklearn":
        if conf.get("serialization_format", "skops") != "skops":
            return _load_pickle(_confined(folder, model_file(conf)), trusted, flavor.name)
        path = _confined(folder, model_file(conf))
        digest, _ = sha256_file(path)
        # MLflow's packages record no hash here; registration recorded every file's.
        if "sha256" in conf and digest != conf["sha256"]:
            raise StoreError(
                f"{path.name} does not match the hash recorded at registration; refusing to load",
                expected=conf.get("sha256"),
                actual=digest,
            )
        _warn_version("scikit-learn", conf.get("sklearn_version"))
        # The types to trust come from the file and the allow-list, never from MLmodel.
        return load_skops(path)
    if flavor.name == "xgboost":
        model = xgboost_class(conf.get("model_class"))()
        model.load_model(_confined(folder, model_file(conf)))
        return model
    if flavor.name == "lightgbm":
        lgb = require_extra("lightgbm", "automl")
        path = _confined(folder, model_file(conf))
        return _LightGBMModel(lgb.Booster(model_file=str(path)), conf)
    if flavor.name == "onnx":
        return OnnxModel(_confined(folder, model_file(conf)), conf)
    if flavor.name == "python":
        return _load_python(folder, conf, trusted)
    raise InvalidInputError(f"unknown flavour {flavor.name!r}")


#: The only classes the XGBoost flavour builds, whatever ``model_class`` in MLmodel says.
XGBOOST_CLASSES = {
    f"xgboost.sklearn.{name}": name
    for name in ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
} | {"xgboost.core.Booster": "Booster"}


def xgboost_class(name: object) -> Any:
    """The XGBoost class a package names, from the fixed table only.

    Raises:
        UnsafeModelError: the name is not one of XGBoost's model classes.
    """
    if not isinstance(name, str) or name not in XGBOOST_CLASSES:
        raise UnsafeModelError(
            "the XGBoost flavour's model_class must be one of "
            f"{', '.join(sorted(XGBOOST_CLASSES))}; got {name!r}"
        )
    xgb = require_extra("xgboost", "automl")
    return getattr(xgb, XGBOOST_CLASSES[name])


def model_file(conf: dict[str, Any]) -> object:
    """The model file a flavour names: Shipyard's ``model_file`` or MLflow's own keys."""
    return conf.get("model_file") or conf.get("pickled_model") or conf.get("data")


def _confined(folder: Path, name: object) -> Path:
    """A file of the package folder named in MLmodel, refusing paths that leave it."""
    if not isinstance(name, str) or not name or "\\" in name or name.startswith("/"):
        raise UnsafeModelError(f"a model file name must be a relative path; got {name!r}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise UnsafeModelError(f"model file {name!r} points outside its package")
    return path


def check_flavor(flavor: Flavor, folder: Path) -> dict[str, Any]:
    """Check, without loading it, that a stored flavour builds nothing unsafe.

    Registration calls this on the files a client uploaded: skops files must only need
    allow-listed types, XGBoost classes come from a fixed table, ONNX files must hold their
    weights inline. Returns what was found (the skops types to trust).

    Raises:
        UnsafeModelError: the package asks for anything outside those rules.
    """
    conf = flavor.conf
    if flavor.name == "sklearn" and conf.get("serialization_format", "skops") == "skops":
        return {"trusted_types": trusted_types(_confined(folder, model_file(conf)))}
    if flavor.name == "xgboost":
        if conf.get("model_class") not in XGBOOST_CLASSES:
            raise UnsafeModelError(
                "the XGBoost flavour's model_class must be one of "
                f"{', '.join(sorted(XGBOOST_CLASSES))}; got {conf.get('model_class')!r}"
            )
        _confined(folder, model_file(conf))
    if flavor.name == "lightgbm":
        _confined(folder, model_file(conf))
    if flavor.name == "onnx":
        check_onnx_file(_confined(folder, model_file(conf)))
    return {}


def check_onnx_file(path: Path) -> None:
    """Refuse ONNX files whose tensors live in external files (a path to read elsewhere).

    Raises:
        UnsafeModelError: a tensor of the graph (or a subgraph) names external data.
    """
    onnx = require_extra("onnx", "onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises anything on a foreign file; each becomes bad input
        raise InvalidInputError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    external = onnx.TensorProto.EXTERNAL
    pending = [proto.graph]
    while pending:
        graph = pending.pop()
        tensors = list(graph.initializer) + [
            a.t for node in graph.node for a in node.attribute if a.HasField("t")
        ]
        if any(t.data_location == external for t in tensors):
            raise UnsafeModelError(
                f"{path.name} keeps tensors in external files; Shipyard stores ONNX models "
                "with their weights inline and refuses external data"
            )
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    pending.append(attr.g)
                pending.extend(attr.graphs)


def _warn_version(dist: str, saved: str | None) -> None:
    now = package_version(dist)
    if saved and now and saved != now:
        logger.warning("model saved with %s %s, loading with %s", dist, saved, now)


def _load_pickle(path: Path, trusted: bool, what: str) -> Any:
    if not trusted:
        raise PermissionDeniedError(
            f"the {what} model is a pickle, which can run any code when loaded; pass "
            "trusted=True (CLI: --trusted) only if you trust whoever stored it",
            flavor=what,
        )
    return pickle.loads(path.read_bytes())  # noqa: S301 - the caller said trusted=True


def _load_python(folder: Path, conf: dict[str, Any], trusted: bool) -> Any:
    if not trusted:
        _load_pickle(folder / conf["model_file"], trusted, "generic Python")
    code = folder / "code"
    added = code.is_dir() and conf.get("module") not in sys.modules
    if added:
        sys.path.insert(0, str(code))
    try:
        return _load_pickle(folder / conf["model_file"], trusted, "generic Python")
    finally:
        if added:
            sys.path.remove(str(code))


class _LightGBMModel:
    """A LightGBM booster with scikit-learn's predict/predict_proba semantics restored."""

    def __init__(self, booster: Any, conf: dict[str, Any]) -> None:
        self.booster = booster
        classes = conf.get("classes")
        self.classes_ = None if classes is None else np.asarray(classes)

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Labels for a classifier, values for a regressor."""
        raw = np.asarray(self.booster.predict(X))
        if self.classes_ is None:
            return raw
        return np.asarray(self.classes_[np.argmax(self._proba(raw), axis=1)])

    def _proba(self, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities (classifiers only)."""
        if self.classes_ is None:
            raise InvalidInputError("predict_proba needs a classifier")
        return self._proba(np.asarray(self.booster.predict(X)))


class OnnxModel:
    """An ONNX Runtime session over a tabular model with one float input ``[n, features]``."""

    def __init__(self, path: Path, conf: dict[str, Any]) -> None:
        ort = require_extra("onnxruntime", "onnx")
        digest, _ = sha256_file(path)
        if conf.get("sha256") and digest != conf["sha256"]:
            raise StoreError(
                f"{path.name} does not match the hash recorded at registration; refusing to load"
            )
        check_onnx_file(path)
        options = ort.SessionOptions()
        # One thread per request: serving runs many requests at once, each tiny.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # converters declare loose shapes; warnings are noise
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.input_type = self.session.get_inputs()[0].type
        outputs = [o.name for o in self.session.get_outputs()]
        self.label_output = outputs[0]
        self.proba_output = next((o for o in outputs if "prob" in o.lower()), None)

    def _feed(self, X: Any) -> dict[str, np.ndarray[Any, Any]]:
        dtype = np.float64 if "double" in self.input_type else np.float32
        return {self.input_name: np.ascontiguousarray(np.asarray(X, dtype=dtype))}

    def run(self, X: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        """Labels (or values) and, for classifiers, probabilities, in one session run."""
        names = [self.label_output] + ([self.proba_output] if self.proba_output else [])
        result = self.session.run(names, self._feed(X))
        label = np.asarray(result[0])
        if label.ndim == 2 and label.shape[1] == 1:
            label = label.reshape(-1)
        return label, (np.asarray(result[1]) if self.proba_output else None)

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Labels or values."""
        return self.run(X)[0]

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities."""
        proba = self.run(X)[1]
        if proba is None:
            raise InvalidInputError("this ONNX model has no probability output")
        return proba


def _final_step(model: Any) -> dict[str, str]:
    """A pipeline's final estimator class: what a bank's list of allowed estimators judges."""
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps:
        return {}
    last = steps[-1][1]
    return {"final_estimator": f"{type(last).__module__}.{type(last).__qualname__}"}
