"""Measuring a variant as a device would run it: size, per-row latency, agreement, metric.

Latency is one row per call (a card terminal scores one payment at a time), on ONNX
Runtime with the target's thread count, after a warm-up; the figure is the 99th percentile
of up to 2,000 calls or 2 seconds, whichever ends first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LATENCY_CALLS = 2000
LATENCY_SECONDS = 2.0
WARMUP_CALLS = 30


@dataclass(frozen=True)
class Measurement:
    """What one model (a variant, or the native one) measured."""

    size_bytes: int
    p50_ms: float
    p99_ms: float
    metric: float
    metric_drop: float
    agreement: float
    max_abs_diff: float

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def percentiles(call: Callable[[int], Any], rows: int) -> tuple[float, float]:
    """(p50, p99) in milliseconds of ``call(i)`` over rows ``i`` in turn."""
    for i in range(min(WARMUP_CALLS, rows)):
        call(i)
    times: list[float] = []
    deadline = time.perf_counter() + LATENCY_SECONDS
    while len(times) < LATENCY_CALLS and (len(times) < 100 or time.perf_counter() < deadline):
        i = len(times) % rows
        started = time.perf_counter_ns()
        call(i)
        times.append((time.perf_counter_ns() - started) / 1e6)
    p50, p99 = np.percentile(np.asarray(times), [50, 99])
    return float(p50), float(p99)


def score(task: str, metric: str, y: np.ndarray[Any, Any], out: np.ndarray[Any, Any]) -> float:
    """The held-out metric of scores (binary: positive probability), labels or values."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if metric == "roc_auc":
        return float(roc_auc_score(y, out))
    if metric == "accuracy":
        return float(accuracy_score(y, out))
    return float(r2_score(y, out))


class OnnxRunner:
    """An ONNX Runtime session over one variant, with the target's threads."""

    def __init__(self, onnx: bytes, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, X: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(labels or values, probabilities or the same values) for a matrix."""
        out = self.session.run(self.outputs, {self.input: X})
        first = np.asarray(out[0]).reshape(len(X), -1)
        first = first[:, 0] if first.shape[1] == 1 else first
        second = np.asarray(out[1], dtype="float64") if len(out) > 1 else first
        return first, second


def measure_variant(
    onnx: bytes,
    X: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    *,
    task: str,
    metric: str,
    native_labels: np.ndarray[Any, Any],
    native_scores: np.ndarray[Any, Any],
    native_metric: float,
    threads: int,
) -> Measurement:
    """Size, latency, agreement with the native model and metric on the held-out rows."""
    runner = OnnxRunner(onnx, threads)
    labels, probabilities = runner.run(X)
    if task == "binary":
        scores = probabilities[:, 1]
        value = score(task, metric, y, scores if metric == "roc_auc" else labels)
    elif task == "multiclass":
        scores = probabilities
        value = score(task, metric, y, labels)
    else:
        scores = labels.astype("float64")
        value = score(task, metric, y, scores)
    agreement = (
        float(np.mean(labels.reshape(-1) == native_labels.reshape(-1)))
        if task != "regression"
        else float(np.mean(np.isclose(scores, native_scores, rtol=1e-3, atol=1e-6)))
    )
    diff = float(np.max(np.abs(scores - native_scores))) if len(X) else 0.0
    one_row = [X[i : i + 1] for i in range(min(len(X), LATENCY_CALLS))]
    p50, p99 = percentiles(lambda i: runner.run(one_row[i]), len(one_row))
    return Measurement(
        size_bytes=len(onnx),
        p50_ms=p50,
        p99_ms=p99,
        metric=value,
        metric_drop=native_metric - value,
        agreement=agreement,
        max_abs_diff=diff,
    )
