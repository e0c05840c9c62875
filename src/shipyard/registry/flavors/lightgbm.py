"""LightGBM models as LightGBM's own text format; loading gives back a booster with
scikit-learn's predict/predict_proba (MLflow has no loader for this, so it goes through
:mod:`shipyard.registry.pyfunc`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.registry.flavors._base import (
    FlavorKind,
    class_name,
    confined,
    is_from,
    model_file,
    package_version,
    require_extra,
)


class LightGBMModel:
    """A LightGBM booster with scikit-learn's predict/predict_proba semantics restored."""

    def __init__(self, booster: Any, conf: dict[str, Any]) -> None:
        self.booster = booster
        classes = conf.get("classes")
        self.classes_ = None if classes is None else np.asarray(classes)

    def _input(self, X: Any) -> Any:
        """Text columns as pandas categories: a booster trained on categorical columns maps
        them to its stored levels (``pandas_categorical``), and refuses object columns."""
        if not getattr(self.booster, "pandas_categorical", None) or not hasattr(X, "dtypes"):
            return X
        from pandas.api.types import is_object_dtype, is_string_dtype

        text = [c for c, kind in X.dtypes.items() if is_object_dtype(kind) or is_string_dtype(kind)]
        return X.astype(dict.fromkeys(text, "category")) if text else X

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Labels for a classifier, values for a regressor."""
        raw = np.asarray(self.booster.predict(self._input(X)))
        if self.classes_ is None:
            return raw
        return np.asarray(self.classes_[np.argmax(self._proba(raw), axis=1)])

    def _proba(self, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict_proba(self, X: Any) -> np.ndarray[Any, Any]:
        """Class probabilities (classifiers only)."""
        if self.classes_ is None:
            raise InvalidInputError("predict_proba needs a classifier")
        return self._proba(np.asarray(self.booster.predict(self._input(X))))


def _save(model: Any, folder: Path) -> dict[str, Any]:
    path = folder / "model.txt"
    booster = getattr(model, "booster_", model)
    booster.save_model(str(path))
    classes = getattr(model, "classes_", None)
    return {
        "model_file": path.name,
        "model_class": class_name(model),
        "lgb_version": package_version("lightgbm"),
        "classes": None if classes is None else np.asarray(classes).tolist(),
    }


def _load(conf: dict[str, Any], folder: Path, trusted: bool) -> Any:
    lgb = require_extra("lightgbm", "automl")
    path = confined(folder, model_file(conf))
    return LightGBMModel(lgb.Booster(model_file=str(path)), conf)


def _to_onnx(model: Any, n_features: int) -> Any:
    from shipyard.registry.onnx_convert import onnxmltools_convert

    return onnxmltools_convert("convert_lightgbm", model, n_features, zipmap=False)


FLAVOR = FlavorKind(
    name="lightgbm",
    priority=20,
    detect=lambda model: is_from(model, "lightgbm"),
    save=_save,
    load=_load,
    needs=("numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "shipyard"),
    to_onnx=_to_onnx,
)
