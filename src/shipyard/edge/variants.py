"""The variants an export tries: the ONNX conversion, then smaller or faster versions of it.

- ``onnx``: the faithful conversion (histogram boosting by :mod:`shipyard.edge.trees` in
  float64, so it equals the native model; other models by skl2onnx or onnxmltools).
- ``onnx-f32``: tree thresholds and leaves in 4 bytes (histogram boosting).
- ``pruned-<k>``: a boosting model's first ``k`` iterations, the fewest whose held-out metric
  (computed on the native model's staged predictions) stays within the target's drop.
- ``optimised``: ONNX Runtime's basic graph optimisations, saved offline (portable).
- ``int8-dynamic`` / ``int8-static``: onnxruntime.quantization on MatMul, Gemm and Conv
  weights (static: activations calibrated on reference rows too).
- ``fp16``: float weights stored in half precision, cast back to float32 where read.

A variant that cannot apply says why (tree ensembles have no weights int8 or float16 act on:
ONNX Runtime's TreeEnsemble takes float and double thresholds only) instead of shipping a
copy under a new name.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.edge import trees
from shipyard.edge.targets import EdgeTarget

logger = logging.getLogger(__name__)

QUANTISABLE = frozenset({"MatMul", "Gemm", "Conv"})
FLOAT = 1  # onnx.TensorProto.FLOAT
#: Float weights below this many bytes are not worth a float16 variant.
MIN_FP16_BYTES = 1024


@dataclass
class Variant:
    """One candidate: its ONNX bytes, or why there is none."""

    name: str
    description: str
    onnx: bytes | None = None
    dtype: str = "float32"
    reason: str | None = None  # why it was not built (not applicable, not allowed, failed)
    iterations: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def built(self) -> bool:
        """Whether there is a model to measure."""
        return self.onnx is not None


def _ops(proto: Any) -> set[str]:
    return {n.op_type for n in proto.graph.node}


def base_variants(model: Any, flavor: str, n_features: int, target: EdgeTarget) -> list[Variant]:
    """The faithful conversion, and for boosted trees their float32 twin (and, for LightGBM,
    onnxmltools' conversion beside ours)."""
    out: list[Variant] = []
    if trees.converts(model, flavor):
        precision: trees.Precision
        for precision, name, what in (
            ("float64", "onnx", "TreeEnsemble (ai.onnx.ml 5), float64: equals the native model"),
            ("float32", "onnx-f32", "TreeEnsemble, thresholds and leaves in float32"),
        ):
            variant = Variant(name, what, dtype=precision)
            try:
                proto = trees.to_onnx(model, n_features, precision=precision, opset=target.opset)
                variant.onnx = proto.SerializeToString()
            except InvalidInputError as exc:
                variant.reason = str(exc)
            out.append(variant)
        if flavor == "sklearn" or out[0].built:
            return out
    name = "onnx" if not out else "onnxmltools"
    variant = Variant(name, f"{flavor} converted by skl2onnx/onnxmltools, float32 input")
    out.insert(0, variant)
    if target.opset < 17:
        variant.reason = f"the converters write opset 17; the target allows {target.opset}"
        return out
    try:
        from shipyard.registry.onnx_convert import to_onnx_proto

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = booster(model) if flavor == "lightgbm" else model
            variant.onnx = to_onnx_proto(source, flavor, n_features).SerializeToString()
    except Exception as exc:  # noqa: BLE001 - converters raise anything; the report says so
        variant.reason = f"conversion failed: {type(exc).__name__}: {exc}"[:300]
    return out


def booster(model: Any) -> Any:
    """The LightGBM booster of a fitted estimator or of a loaded registry model."""
    found = getattr(model, "booster", None) or getattr(model, "booster_", None)
    return model if found is None else found


def boosting_iterations(model: Any, flavor: str) -> int | None:
    """Iterations a boosting model has, or None for a model that is not pruned by stages."""
    if flavor == "sklearn" and trees.is_hist_gradient_boosting(model):
        return trees.iterations_of(model)
    if flavor == "lightgbm":
        return int(booster(model).current_iteration())
    return None


def staged_scores(model: Any, flavor: str, X: Any, k: int) -> np.ndarray[Any, Any]:
    """The native model's scores using its first ``k`` iterations."""
    if flavor == "lightgbm":
        raw = np.asarray(booster(model).predict(X, num_iteration=k))
        if getattr(model, "classes_", None) is None:
            return raw
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
    truncated = copy.copy(model)
    truncated._predictors = model._predictors[:k]
    if hasattr(model, "predict_proba"):
        return np.asarray(truncated.predict_proba(X))
    return np.asarray(truncated.predict(X))


def fewest_iterations(total: int, good_enough: Callable[[int], bool]) -> int | None:
    """The smallest ``k`` below ``total`` for which ``good_enough(k)`` holds (binary search:
    boosting's held-out metric rises with k until it flattens), or None."""
    if total < 2 or not good_enough(total - 1):
        return None
    low, high = 1, total - 1
    while low < high:
        middle = (low + high) // 2
        if good_enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


def pruned_variant(model: Any, flavor: str, n_features: int, k: int, target: EdgeTarget) -> Variant:
    """A boosting model cut to its first ``k`` iterations, converted."""
    total = boosting_iterations(model, flavor)
    name = f"pruned-{k}"
    what = f"first {k} of {total} boosting iterations"
    variant = Variant(name, what + ", float32", dtype="float32", iterations=k)
    try:
        proto = trees.to_onnx(
            model, n_features, iterations=k, precision="float32", opset=target.opset
        )
        variant.onnx = proto.SerializeToString()
    except InvalidInputError as exc:
        variant.reason = str(exc)
    return variant


def derived_variants(
    base: Variant, target: EdgeTarget, calibration: np.ndarray[Any, Any]
) -> list[Variant]:
    """Graph-optimised, int8 and float16 versions of ``base``."""
    import onnx

    proto = onnx.load_from_string(base.onnx) if base.onnx is not None else None
    out = [_optimised(base)]
    ops = _ops(proto) if proto is not None else set()
    quantisable = ops & QUANTISABLE
    for name, what, static in (
        ("int8-dynamic", "int8 weights, activations quantised per batch", False),
        ("int8-static", "int8 weights and activations, calibrated on reference rows", True),
    ):
        variant = Variant(name, what, dtype=base.dtype)
        if not target.int8:
            variant.reason = "the target does not allow int8"
        elif proto is None:
            variant.reason = f"no {base.name} model to quantise"
        elif not quantisable:
            variant.reason = (
                "not applicable: int8 acts on MatMul, Gemm and Conv weights; this graph has "
                f"none ({', '.join(sorted(ops))})"
            )
        else:
            _quantise(base, variant, static, calibration)
        out.append(variant)
    out.append(_fp16(base, proto, target))
    return out


def _optimised(base: Variant) -> Variant:
    import onnxruntime as ort

    variant = Variant("optimised", "ONNX Runtime basic graph optimisations, saved offline")
    variant.dtype = base.dtype
    if base.onnx is None:
        variant.reason = f"no {base.name} model to optimise"
        return variant
    with tempfile.TemporaryDirectory(prefix="shipyard-edge-") as tmp:
        path = Path(tmp) / "optimised.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(path)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(base.onnx, options, providers=["CPUExecutionProvider"])
            variant.onnx = path.read_bytes()
        except Exception as exc:  # noqa: BLE001 - the runtime's refusal is the report's reason
            variant.reason = f"ONNX Runtime could not optimise it: {exc}"[:300]
    return variant


def _calibration_reader(name: str, rows: np.ndarray[Any, Any], batch: int = 64) -> Any:
    """onnxruntime.quantization's CalibrationDataReader over reference rows."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches = iter([{name: rows[i : i + batch]} for i in range(0, len(rows), batch)])

        def get_next(self) -> dict[str, np.ndarray[Any, Any]] | None:
            return next(self._batches, None)

    return Reader()


def _quantise(
    base: Variant, variant: Variant, static: bool, calibration: np.ndarray[Any, Any]
) -> None:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if base.onnx is None:
        return
    with tempfile.TemporaryDirectory(prefix="shipyard-edge-") as tmp:
        source, dest = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        source.write_bytes(base.onnx)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if static:
                    name = onnx.load_from_string(base.onnx).graph.input[0].name
                    rows = calibration.astype(base.dtype)
                    quantize_static(
                        source,
                        dest,
                        _calibration_reader(name, rows),
                        quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                    )
                    variant.details["calibration_rows"] = len(rows)
                else:
                    quantize_dynamic(source, dest, weight_type=QuantType.QInt8)
            variant.onnx = dest.read_bytes()
        except Exception as exc:  # noqa: BLE001 - the quantiser's refusal is the reason given
            variant.reason = f"quantisation failed: {type(exc).__name__}: {exc}"[:300]


def _fp16(base: Variant, proto: Any, target: EdgeTarget) -> Variant:
    variant = Variant("fp16", "float weights stored in float16, computed in float32")
    variant.dtype = base.dtype
    if not target.fp16:
        variant.reason = "the target does not allow float16"
        return variant
    if proto is None:
        variant.reason = f"no {base.name} model to convert"
        return variant
    weights = sum(int(np.prod(t.dims)) * 4 for t in proto.graph.initializer if t.data_type == FLOAT)
    if weights < MIN_FP16_BYTES:
        variant.reason = (
            "not applicable: float16 acts on float weights; this graph has "
            f"{weights} bytes of them (tree thresholds live in TreeEnsemble attributes, "
            "which ONNX Runtime runs in float or double only)"
        )
        return variant
    variant.onnx = half_weights(proto).SerializeToString()
    return variant


def half_weights(proto: Any) -> Any:
    """The model with each float weight stored in float16 and cast back to float32 where it
    is read: half the bytes on the device, the same arithmetic (ONNX Runtime folds the casts
    once at load). onnxconverter-common's full float16 conversion was tried first: it left
    skl2onnx's own Cast nodes producing float beside float16 weights, which ONNX Runtime
    refuses, and with Cast blocked it did not finish."""
    import onnx
    from onnx import helper, numpy_helper

    half = onnx.ModelProto()
    half.CopyFrom(proto)
    graph = half.graph
    casts = []
    kept = []
    for tensor in graph.initializer:
        if tensor.data_type == FLOAT and int(np.prod(tensor.dims)) >= 16:
            values = numpy_helper.to_array(tensor).astype(np.float16)
            stored = f"{tensor.name}__fp16"
            kept.append(numpy_helper.from_array(values, stored))
            casts.append(helper.make_node("Cast", [stored], [tensor.name], to=FLOAT))
        else:
            kept.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return half
