"""scikit-learn models (and pipelines), stored with skops: loading builds only the types
recorded at save time, bound to the file's sha256, never a pickle unless trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.hashing import sha256_file
from shipyard.core.skops_trust import load_skops, trusted_types
from shipyard.registry.flavors._base import (
    FlavorKind,
    class_name,
    confined,
    is_from,
    load_pickle,
    model_file,
    package_version,
    warn_version,
)


def _final_step(model: Any) -> dict[str, str]:
    """A pipeline's final estimator class: what a bank's list of allowed estimators judges."""
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps:
        return {}
    return {"final_estimator": class_name(steps[-1][1])}


def _save(model: Any, folder: Path) -> dict[str, Any]:
    import skops.io as sio

    path = folder / "model.skops"
    try:
        sio.dump(model, path)
    except (RecursionError, TypeError, ValueError, AttributeError, NotImplementedError) as exc:
        raise InvalidInputError(f"skops cannot store this {type(model).__name__}: {exc}") from exc
    digest, _ = sha256_file(path)
    return {
        "model_file": path.name,
        "serialization_format": "skops",
        "model_class": class_name(model),
        **_final_step(model),
        "sklearn_version": package_version("scikit-learn"),
        "skops_version": package_version("skops"),
        "sha256": digest,
        # The exact types skops needs trusted for this file, bound to its hash.
        "trusted_types": sorted(sio.get_untrusted_types(file=path)),
    }


def _skops(conf: dict[str, Any]) -> bool:
    return bool(conf.get("serialization_format", "skops") == "skops")


def _load(conf: dict[str, Any], folder: Path, trusted: bool) -> Any:
    path = confined(folder, model_file(conf))
    if not _skops(conf):  # an MLflow package's pickle or cloudpickle
        return load_pickle(path, trusted, "sklearn")
    digest, _ = sha256_file(path)
    # MLflow's packages record no hash here; registration recorded every file's.
    if "sha256" in conf and digest != conf["sha256"]:
        raise StoreError(
            f"{path.name} does not match the hash recorded at registration; refusing to load",
            expected=conf.get("sha256"),
            actual=digest,
        )
    warn_version("scikit-learn", conf.get("sklearn_version"))
    # The types to trust come from the file and the allow-list, never from MLmodel.
    return load_skops(path)


def _check(conf: dict[str, Any], folder: Path) -> dict[str, Any]:
    path = confined(folder, model_file(conf))
    return {"trusted_types": trusted_types(path)} if _skops(conf) else {}


def _mlflow_keys(conf: dict[str, Any]) -> dict[str, Any]:
    return {
        "pickled_model": conf["model_file"],
        "skops_trusted_types": conf.get("trusted_types") or None,
        "code": None,
    }


def _to_onnx(model: Any, n_features: int) -> Any:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    from shipyard.registry.onnx_convert import TARGET_OPSET, patch_hist_gradient_boosting

    patch_hist_gradient_boosting()
    options: dict[Any, Any] = {}
    if hasattr(model, "predict_proba"):
        options = {id(model): {"zipmap": False}}
    return to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options=options,
    )


FLAVOR = FlavorKind(
    name="sklearn",
    priority=30,
    detect=lambda model: is_from(model, "sklearn"),
    save=_save,
    load=_load,
    check=_check,
    mlflow_loader="mlflow.sklearn",
    mlflow_keys=_mlflow_keys,
    needs=("numpy", "pandas", "scipy", "scikit-learn", "skops"),
    to_onnx=_to_onnx,
)
