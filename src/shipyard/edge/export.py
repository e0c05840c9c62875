"""Export a registered model for a device class: convert, try variants, measure each against
the target's budgets, choose the smallest that meets them all, and say why for every one.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.edge import trees
from shipyard.edge.measure import Measurement, measure_variant, percentiles, score
from shipyard.edge.targets import EdgeTarget
from shipyard.edge.variants import (
    Variant,
    base_variants,
    booster,
    boosting_iterations,
    derived_variants,
    fewest_iterations,
    pruned_variant,
    staged_scores,
)

#: Rows of the held-out set given to static int8 calibration (the rest is measured too).
CALIBRATION_ROWS = 512
#: Pruning aims this far inside the metric budget, leaving room for float32's rounding.
PRUNE_MARGIN = 0.8
MB = 1_000_000

Progress = Callable[[str], None]


@dataclass
class VariantResult:
    """One variant's outcome: measured figures, and each budget it met or broke."""

    name: str
    description: str
    status: str  # "passed", "failed", "not built"
    reasons: list[str]
    measured: Measurement | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "reasons": self.reasons,
            "measured": self.measured.as_dict() if self.measured else None,
            **({"details": self.details} if self.details else {}),
        }


@dataclass
class ExportReport:
    """The whole export: the native model's figures, every variant, and the choice."""

    model: str
    version: int
    flavor: str
    task: str
    metric: str
    target: EdgeTarget
    holdout_rows: int
    native: dict[str, Any]
    variants: list[VariantResult]
    chosen: str | None
    seconds: float = 0.0
    bundle: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``--json``, the bundle record, the HTML page)."""
        return {
            "model": self.model,
            "version": self.version,
            "uri": f"models:/{self.model}/{self.version}",
            "flavor": self.flavor,
            "task": self.task,
            "metric": self.metric,
            "target": self.target.budgets(),
            "holdout_rows": self.holdout_rows,
            "native": self.native,
            "variants": [v.as_dict() for v in self.variants],
            "chosen": self.chosen,
            "seconds": round(self.seconds, 2),
            "bundle": self.bundle,
        }

    def chosen_result(self) -> VariantResult | None:
        """The chosen variant's result."""
        return next((v for v in self.variants if v.name == self.chosen), None)


@dataclass
class Prepared:
    """What the export needs of the model and data, computed once."""

    columns: list[dict[str, Any]]
    X: np.ndarray[Any, Any]  # the held-out rows as the device encodes them (float64)
    y: np.ndarray[Any, Any]
    task: str
    metric: str
    classes: list[Any] | None
    native_labels: np.ndarray[Any, Any]
    native_scores: np.ndarray[Any, Any]
    native_metric: float
    frame: Any  # the held-out inputs as the native model takes them


def _task(native: Any) -> str:
    classes = getattr(native, "classes_", None)
    if classes is None:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def prepare(loaded: Any, data: Any, label: str, target: EdgeTarget) -> Prepared:
    """Encode the held-out rows as a device will, and the native model's answers on them."""
    import pandas as pd

    from shipyard_edge.model import encode

    if not isinstance(data, pd.DataFrame):
        raise InvalidInputError("the held-out data must be a table")
    if label not in data.columns:
        raise InvalidInputError(f"the held-out data has no label column {label!r}")
    names = loaded.signature.input_names
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise InvalidInputError(f"the held-out data lacks the model's inputs: {missing}")
    if len(data) < 50:
        raise InvalidInputError("the held-out data needs at least 50 rows to measure on")
    native = loaded.native
    if loaded.flavor == "sklearn" and trees.is_hist_gradient_boosting(native):
        columns = trees.input_of(native, names).columns
    elif loaded.flavor == "lightgbm":
        columns = trees.lightgbm_input(native, names, data).columns
    else:
        text = [n for n in names if data[n].dtype.kind not in "fiub"]
        if text:
            raise InvalidInputError(
                f"edge export takes numeric inputs (or histogram boosting's native "
                f"categories); {', '.join(text)} is not numeric"
            )
        columns = [{"name": n, "kind": "number"} for n in names]
    frame = data[names]
    rows = {n: frame[n].astype(object).where(frame[n].notna(), None).tolist() for n in names}
    X = encode(columns, rows, "float64")
    task = _task(native)
    metric = target.metric or {"binary": "roc_auc", "multiclass": "accuracy"}.get(task, "r2")
    if task == "regression" and metric != "r2":
        raise InvalidInputError(f"metric {metric} needs a classifier; this model is a regressor")
    y_raw = data[label].to_numpy()
    classes = getattr(native, "classes_", None)
    native_labels = np.asarray(loaded.predict(frame))
    if task == "regression":
        y = y_raw.astype("float64")
        native_scores = native_labels.astype("float64")
        native_metric = score(task, metric, y, native_scores)
    else:
        proba = np.asarray(native.predict_proba(loaded._as_input(frame)), dtype="float64")
        if task == "binary":
            positive = np.asarray(classes)[1]
            y = (y_raw == positive).astype(int) if metric == "roc_auc" else y_raw
            native_scores = proba[:, 1]
            native_metric = score(
                task, metric, y, native_scores if metric == "roc_auc" else native_labels
            )
        else:
            y = y_raw
            native_scores = proba
            native_metric = score(task, metric, y, native_labels)
    return Prepared(
        columns=columns,
        X=X,
        y=y,
        task=task,
        metric=metric,
        classes=None if classes is None else np.asarray(classes).tolist(),
        native_labels=native_labels,
        native_scores=native_scores,
        native_metric=native_metric,
        frame=frame,
    )


def native_figures(loaded: Any, data: Any, prepared: Prepared) -> dict[str, Any]:
    """The native model as served in process: its stored size and one-row latency."""
    from shipyard.registry.flavors import save_flavor

    if loaded.flavor == "lightgbm":  # the registry keeps LightGBM's own text format
        size = len(booster(loaded.native).model_to_string().encode())
    else:
        with tempfile.TemporaryDirectory(prefix="shipyard-edge-") as tmp:
            save_flavor(loaded.native, loaded.flavor, Path(tmp))
            size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
    frame = data[loaded.signature.input_names]
    one_row = [frame.iloc[i : i + 1] for i in range(min(len(frame), 500))]
    predict = loaded.predict_proba if prepared.task != "regression" else loaded.predict
    p50, p99 = percentiles(lambda i: predict(one_row[i]), len(one_row))
    return {
        "size_bytes": size,
        "p50_ms": p50,
        "p99_ms": p99,
        "metric": prepared.native_metric,
        "engine": loaded.flavor,
    }


def _budget_reasons(m: Measurement, target: EdgeTarget, metric: str) -> list[str]:
    """One line per budget: ``ok: ...`` or ``FAIL: ...``, with the figure and the limit."""
    checks: list[tuple[bool, str, str, str]] = []
    if target.max_size_mb is not None:
        ok = m.size_bytes <= target.max_size_mb * MB
        checks.append((ok, f"size {m.size_bytes / MB:.3f} MB", "over", f"{target.max_size_mb} MB"))
    if target.max_p99_ms is not None:
        ok = m.p99_ms <= target.max_p99_ms
        checks.append((ok, f"p99 {m.p99_ms:.3f} ms", "over", f"{target.max_p99_ms} ms"))
    ok = m.metric_drop <= target.max_metric_drop + 1e-12
    checks.append((ok, f"{metric} drop {m.metric_drop:+.4f}", "over", f"{target.max_metric_drop}"))
    if target.max_score_diff is not None:
        ok = m.max_abs_diff <= target.max_score_diff
        what = f"largest score change {m.max_abs_diff:.4f}"
        checks.append((ok, what, "over", f"{target.max_score_diff}"))
    if target.min_agreement is not None:
        ok = m.agreement >= target.min_agreement
        checks.append((ok, f"agreement {m.agreement:.4f}", "below", f"{target.min_agreement}"))
    return [
        f"ok: {what} within {limit}" if ok else f"FAIL: {what} {broken} {limit}"
        for ok, what, broken, limit in checks
    ]


def _candidates(
    loaded: Any, prepared: Prepared, target: EdgeTarget, progress: Progress
) -> list[Variant]:
    native, flavor = loaded.native, loaded.flavor
    n = len(prepared.columns)
    progress("converting to ONNX")
    out = base_variants(native, flavor, n, target)
    total = boosting_iterations(native, flavor)
    if total is not None:
        progress(f"finding the fewest of {total} boosting iterations within the budget")
        frame = loaded._as_input(prepared.frame)
        goal = prepared.native_metric - PRUNE_MARGIN * target.max_metric_drop

        def good_enough(k: int) -> bool:
            out_k = staged_scores(native, flavor, frame, k)
            if target.max_score_diff is not None:
                scores = out_k[:, 1] if prepared.task == "binary" else out_k
                diff = float(np.max(np.abs(scores - prepared.native_scores)))
                if diff > PRUNE_MARGIN * target.max_score_diff:
                    return False
            if prepared.task == "binary" and prepared.metric == "roc_auc":
                value = score(prepared.task, prepared.metric, prepared.y, out_k[:, 1])
            elif prepared.task == "regression":
                value = score(prepared.task, prepared.metric, prepared.y, out_k)
            else:
                labels = np.asarray(prepared.classes)[np.argmax(out_k, axis=1)]
                value = score(prepared.task, prepared.metric, prepared.y, labels)
            return value >= goal

        k = fewest_iterations(total, good_enough)
        if k is None:
            out.append(
                Variant(
                    "pruned",
                    "fewer boosting iterations",
                    reason=("no shorter ensemble keeps the metric within the budget"),
                )
            )
        else:
            out.append(pruned_variant(native, flavor, n, k, target))
    base = out[0]
    progress("optimising and quantising")
    calibration = prepared.X[:CALIBRATION_ROWS]
    out.extend(derived_variants(base, target, calibration))
    return out


def plan_export(
    loaded: Any,
    name: str,
    version: int,
    target: EdgeTarget,
    data: Any,
    label: str,
    *,
    progress: Progress | None = None,
) -> tuple[ExportReport, Variant | None, Prepared]:
    """Measure every variant of ``loaded`` on ``data`` against ``target``; choose one."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    prepared = prepare(loaded, data, label, target)
    say("measuring the native model")
    native = native_figures(loaded, data, prepared)
    candidates = _candidates(loaded, prepared, target, say)
    results: list[VariantResult] = []
    built: dict[str, Variant] = {}
    for variant in candidates:
        if not variant.built:
            results.append(
                VariantResult(
                    variant.name,
                    variant.description,
                    "not built",
                    [variant.reason or "not built"],
                    None,
                    variant.details,
                )
            )
            continue
        say(f"measuring {variant.name}")
        onnx_bytes = variant.onnx or b""
        try:
            measured = measure_variant(
                onnx_bytes,
                prepared.X.astype(variant.dtype),
                prepared.y,
                task=prepared.task,
                metric=prepared.metric,
                native_labels=prepared.native_labels,
                native_scores=prepared.native_scores,
                native_metric=prepared.native_metric,
                threads=target.threads,
            )
        except Exception as exc:  # noqa: BLE001 - a variant the runtime refuses fails
            results.append(
                VariantResult(
                    variant.name,
                    variant.description,
                    "failed",
                    [f"ONNX Runtime could not run it: {exc}"[:300]],
                )
            )
            continue
        reasons = _budget_reasons(measured, target, prepared.metric)
        status = "failed" if any(r.startswith("FAIL") for r in reasons) else "passed"
        results.append(
            VariantResult(
                variant.name, variant.description, status, reasons, measured, variant.details
            )
        )
        built[variant.name] = variant
    passed = [r for r in results if r.status == "passed" and r.measured is not None]
    chosen = min(
        passed,
        key=lambda r: (r.measured.size_bytes, r.measured.p99_ms) if r.measured else (0, 0.0),
        default=None,
    )
    report = ExportReport(
        model=name,
        version=version,
        flavor=loaded.flavor,
        task=prepared.task,
        metric=prepared.metric,
        target=target,
        holdout_rows=len(prepared.X),
        native=native,
        variants=results,
        chosen=chosen.name if chosen else None,
        seconds=time.perf_counter() - started,
    )
    return report, built.get(chosen.name) if chosen else None, prepared


def signature_file(prepared: Prepared, runner_outputs: list[str], dtype: str) -> bytes:
    """``signature.json``: the columns, their encoding, the input and outputs."""
    return json.dumps(
        {
            "columns": prepared.columns,
            "input": {"name": "input", "dtype": dtype},
            "outputs": runner_outputs,
            "task": prepared.task,
            "classes": prepared.classes,
        },
        indent=2,
        default=str,
    ).encode()
