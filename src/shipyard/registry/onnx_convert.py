"""Convert scikit-learn, XGBoost and LightGBM models to ONNX, kept only if they agree.

The converted model is a faster way to serve the same model, never a different model:
it is kept only when its predictions on the registration example match the native ones
(labels identical, probabilities or values within the recorded tolerance).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.registry import flavors as fl
from shipyard.registry.flavors.onnx import OnnxModel, onnx_conf

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4  # float32 trees against float64 ones: differences are ~1e-7 in practice
# Pinned opsets, recorded in the package: ONNX 1.16+ runtimes all execute these.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
ONNXMLTOOLS_OPSET = 15  # the newest opset onnxmltools 1.16 converts LightGBM/XGBoost to


@dataclass(frozen=True, slots=True)
class Conversion:
    """The outcome of one conversion attempt: a verified file, or why there is none."""

    converted: bool
    reason: str
    conf: dict[str, Any]


def onnx_available() -> bool:
    """Whether the ``onnx`` extra is installed."""
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def convert(
    model: Any, flavor: str, example: np.ndarray[Any, Any], folder: Path, native_input: Any
) -> Conversion:
    """Try to write ``folder/model.onnx`` for ``model`` and verify it on ``example`` rows.

    ``native_input`` is the same rows as the native model takes them (a DataFrame keeps its
    feature names), so the comparison is like for like.
    """
    if not onnx_available():
        return Conversion(False, "the onnx extra is not installed", {})
    if example.dtype.kind not in "fiub":
        return Conversion(False, "only all-numeric inputs are converted", {})
    n_features = example.shape[1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = to_onnx_proto(model, flavor, n_features)
    except Exception as exc:  # noqa: BLE001 - converters raise anything; conversion is optional
        logger.info("ONNX conversion of %s skipped: %s", type(model).__name__, exc)
        return Conversion(False, f"{type(exc).__name__}: {exc}"[:500], {})
    path = folder / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    conf = onnx_conf(path)
    try:
        session = OnnxModel(path, conf)
        label, proba = session.run(example)
    except Exception as exc:  # noqa: BLE001 - a converted model the runtime refuses
        path.unlink()
        return Conversion(False, f"ONNX Runtime refused the conversion: {exc}"[:500], {})
    parity = _parity(model, native_input, label, proba)
    conf |= {"parity": parity, "tolerance": TOLERANCE, "source": "converted"}
    if not parity["passed"]:
        path.unlink()
        return Conversion(False, f"predictions differ from the native model: {parity}", {})
    return Conversion(True, "verified", conf)


def patch_hist_gradient_boosting() -> None:
    """Work around skl2onnx 1.20 + onnx >= 1.20 refusing HistGradientBoosting models.

    skl2onnx passes a Python ``False`` for leaves in ``nodes_missing_value_tracks_true``,
    which newer onnx helpers reject as "Expected an int, got a boolean". Casting the list
    to ints after it is built is exactly what the converter means; remove once fixed
    upstream (the wrapper is a no-op on fixed versions).
    """
    from skl2onnx.operator_converters import random_forest as rf

    original = rf.add_tree_to_attribute_pairs_hist_gradient_boosting
    if getattr(original, "_shipyard_patched", False):
        return

    def cast_missing_flags(attr_pairs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = original(attr_pairs, *args, **kwargs)
        key = "nodes_missing_value_tracks_true"
        if key in attr_pairs:
            attr_pairs[key] = [int(v) for v in attr_pairs[key]]
        return result

    cast_missing_flags._shipyard_patched = True  # type: ignore[attr-defined]
    rf.add_tree_to_attribute_pairs_hist_gradient_boosting = cast_missing_flags


def onnxmltools_convert(converter: str, model: Any, n_features: int, **options: Any) -> Any:
    """``onnxmltools.<converter>`` on a float input ``[None, n_features]`` named ``input``,
    at the opset onnxmltools converts boosted trees to."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    return getattr(onnxmltools, converter)(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=ONNXMLTOOLS_OPSET,
        **options,
    )


def to_onnx_proto(model: Any, flavor: str, n_features: int) -> Any:
    """The ONNX ``ModelProto`` of a model whose flavour has a converter (float32 input
    named ``input``, probabilities without a ZipMap), at the pinned opsets."""
    converter = fl.flavor_kind(flavor).to_onnx
    if converter is None:
        raise ValueError(f"no ONNX converter for the {flavor} flavour")
    return converter(model, n_features)


def _parity(
    model: Any,
    example: Any,
    label: np.ndarray[Any, Any],
    proba: np.ndarray[Any, Any] | None,
) -> dict[str, Any]:
    native = np.asarray(model.predict(example))
    rows = len(example)
    out: dict[str, Any] = {"rows": rows}
    if hasattr(model, "predict_proba") and proba is not None:
        native_proba = np.asarray(model.predict_proba(example), dtype="float64")
        diff = float(np.max(np.abs(native_proba - proba.astype("float64")))) if rows else 0.0
        agree = float(np.mean(native.reshape(-1) == label.reshape(-1))) if rows else 1.0
        out |= {"max_abs_diff": diff, "label_agreement": agree}
        out["passed"] = diff <= TOLERANCE and agree == 1.0
    else:
        diff = float(np.max(np.abs(native.astype("float64").reshape(-1) - label.reshape(-1))))
        scale = max(1.0, float(np.max(np.abs(native)))) if rows else 1.0
        out |= {"max_abs_diff": diff, "relative_diff": diff / scale}
        out["passed"] = diff / scale <= TOLERANCE
    return out
