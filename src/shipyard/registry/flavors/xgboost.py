"""XGBoost models in XGBoost's own UBJSON format; the class built on load comes from a
fixed table, whatever ``model_class`` in MLmodel says."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from shipyard.core.skops_trust import UnsafeModelError
from shipyard.registry.flavors._base import (
    FlavorKind,
    class_name,
    confined,
    is_from,
    model_file,
    package_version,
    require_extra,
)

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


def _save(model: Any, folder: Path) -> dict[str, Any]:
    path = folder / "model.ubj"
    model.save_model(path)
    return {
        "model_file": path.name,
        "model_class": class_name(model),
        "xgb_version": package_version("xgboost"),
        "data": path.name,
    }


def _load(conf: dict[str, Any], folder: Path, trusted: bool) -> Any:
    model = xgboost_class(conf.get("model_class"))()
    model.load_model(confined(folder, model_file(conf)))
    return model


def _check(conf: dict[str, Any], folder: Path) -> dict[str, Any]:
    if conf.get("model_class") not in XGBOOST_CLASSES:
        raise UnsafeModelError(
            "the XGBoost flavour's model_class must be one of "
            f"{', '.join(sorted(XGBOOST_CLASSES))}; got {conf.get('model_class')!r}"
        )
    confined(folder, model_file(conf))
    return {}


def _to_onnx(model: Any, n_features: int) -> Any:
    from shipyard.registry.onnx_convert import onnxmltools_convert

    # The converter only reads features named f0..fN; names do not change the trees.
    model = copy.deepcopy(model)
    model.get_booster().feature_names = None
    return onnxmltools_convert("convert_xgboost", model, n_features)


FLAVOR = FlavorKind(
    name="xgboost",
    priority=10,
    detect=lambda model: is_from(model, "xgboost"),
    save=_save,
    load=_load,
    check=_check,
    mlflow_loader="mlflow.xgboost",
    mlflow_keys=lambda conf: {"data": conf["model_file"], "model_format": "ubj", "code": None},
    needs=("numpy", "pandas", "scipy", "scikit-learn", "xgboost"),
    to_onnx=_to_onnx,
)
