"""Evaluation metrics, and a paired bootstrap fast enough for a million rows.

Point estimates use scikit-learn on every row. The champion/challenger interval resamples
rows with the multinomial bootstrap, done on cells instead of rows: every row falls in one
cell (its label and both models' score bins, or both models' decisions), a resample of n
rows is one multinomial draw of n over the cells, and each metric is computed from the
cell counts. That is the exact bootstrap of the binned metric; with 128 score bins per
model the binning moves a rank metric by well under 0.004, and since the interval is
centred on the exact point estimate (basic bootstrap) only the spread comes from bins.
From 100,000 rows the cell counts are drawn as independent Poisson variables (the Poisson
bootstrap, Hanley and MacGibbon 2006), which matches the multinomial at that size.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError

Array = np.ndarray[Any, Any]
SCORE_BINS = 128
POISSON_ROWS = 100_000
LOSS_BINS = 4096


def metric_value(
    metric: str, y_true: Array, score: Array | None, pred: Array, *, precision: float | None = None
) -> float:
    """One metric on every row; ``score`` is the positive-class probability (binary)."""
    from sklearn import metrics as m

    if ":" in metric:
        return float(_custom(metric)(y_true, score if score is not None else pred))
    if metric in {"roc_auc", "pr_auc", "log_loss", "brier", "recall_at_precision"}:
        if score is None:
            raise InvalidInputError(f"{metric} needs a model with predict_proba (a classifier)")
        if len(np.unique(y_true)) < 2:
            raise InvalidInputError(f"{metric} needs both classes in the evaluation labels")
    if metric == "roc_auc":
        return float(m.roc_auc_score(y_true, score))
    if metric == "pr_auc":
        return float(m.average_precision_score(y_true, score))
    if metric == "log_loss":
        return float(m.log_loss(y_true, np.clip(score, 1e-15, 1 - 1e-15), labels=[0, 1]))  # type: ignore[arg-type]
    if metric == "brier":
        return float(m.brier_score_loss(y_true, score))
    if metric == "recall_at_precision":
        prec, rec, _ = m.precision_recall_curve(y_true, score)
        ok = rec[prec >= (precision or 0.0)]
        return float(ok.max()) if ok.size else 0.0
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, pred))
    if metric == "f1":
        return float(m.f1_score(y_true, pred, zero_division=0))
    if metric == "precision":
        return float(m.precision_score(y_true, pred, zero_division=0))
    if metric == "recall":
        return float(m.recall_score(y_true, pred, zero_division=0))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true, pred)))
    if metric == "mae":
        return float(m.mean_absolute_error(y_true, pred))
    if metric == "r2":
        return float(m.r2_score(y_true, pred))
    raise InvalidInputError(f"unknown metric {metric!r}")


def _custom(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot import custom metric {path}: {exc}") from None
    if not callable(fn):
        raise InvalidInputError(f"custom metric {path} is not callable")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Comparison:
    """Candidate minus champion on one metric, with its bootstrap interval."""

    metric: str
    candidate: float
    champion: float
    difference: float  # oriented: positive = candidate better
    lower: float
    upper: float
    confidence: float
    resamples: int


def paired_bootstrap(
    metric: str,
    y_true: Array,
    candidate: tuple[Array | None, Array],
    champion: tuple[Array | None, Array],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Bootstrap interval of (candidate - champion), oriented so that higher is better."""
    from shipyard.gates.policy import METRICS

    sign = 1.0 if METRICS.get(metric) == "higher" else -1.0
    a = metric_value(metric, y_true, *candidate)
    b = metric_value(metric, y_true, *champion)
    point = sign * (a - b)
    cells, stat = _cells(metric, y_true, candidate, champion)
    codes, counts = np.unique(cells, return_counts=True)
    rng = np.random.default_rng(seed)
    full = stat(codes, counts.astype("float64"))
    shares = counts / counts.sum()

    def draw() -> Array:
        if len(y_true) >= POISSON_ROWS:
            # Each cell's count ~ Poisson(its count): the Poisson bootstrap, matching the
            # multinomial one at this size for half the cost.
            return rng.poisson(counts)
        return rng.multinomial(len(y_true), shares)

    deltas = np.array(
        [sign * (stat(codes, draw().astype("float64")) - full) for _ in range(resamples)]
    )
    # Basic (centred) bootstrap: the spread comes from resampling, the centre is exact.
    alpha = 1 - confidence
    lower = point - float(np.quantile(deltas, 1 - alpha / 2))
    upper = point - float(np.quantile(deltas, alpha / 2))
    return Comparison(metric, a, b, point, lower, upper, confidence, resamples)


def _cells(
    metric: str,
    y_true: Array,
    candidate: tuple[Array | None, Array],
    champion: tuple[Array | None, Array],
) -> tuple[Array, Callable[[Array, Array], float]]:
    """Each row's cell code, and the metric difference (a - b) from cell counts."""
    y = np.asarray(y_true)
    if metric in {"roc_auc", "pr_auc"}:
        sa, sb = candidate[0], champion[0]
        if sa is None or sb is None:
            raise InvalidInputError(f"{metric} needs models with predict_proba")
        ba, bb = _score_bins(sa), _score_bins(sb)
        code = (ba.astype("int64") * SCORE_BINS + bb) * 2 + (y == 1)
        rank_stat = _binned_auc if metric == "roc_auc" else _binned_ap

        def rank_diff(codes: Array, n: Array) -> float:
            label = codes % 2
            pair = codes // 2
            size = 2 * SCORE_BINS
            pa = np.bincount((pair // SCORE_BINS) * 2 + label, weights=n, minlength=size)
            pb = np.bincount((pair % SCORE_BINS) * 2 + label, weights=n, minlength=size)
            return rank_stat(pa.reshape(-1, 2)) - rank_stat(pb.reshape(-1, 2))

        return code, rank_diff
    if metric in {"accuracy", "f1", "precision", "recall"}:
        pa_, pb_ = candidate[1].astype("int64"), champion[1].astype("int64")
        code = (pa_ * 2 + pb_) * 2 + (y == 1)

        def confusion_diff(codes: Array, n: Array) -> float:
            label = codes % 2
            a_pred = codes // 4
            b_pred = (codes // 2) % 2
            return _confusion_metric(metric, label, a_pred, n) - _confusion_metric(
                metric, label, b_pred, n
            )

        return code, confusion_diff
    # Mean losses: bin the per-row difference; each cell carries its mean.
    diff = _row_loss(metric, y, candidate) - _row_loss(metric, y, champion)
    edges = np.unique(np.quantile(diff, np.linspace(0, 1, LOSS_BINS + 1)[1:-1]))
    code = np.searchsorted(edges, diff, side="right")
    sums = np.bincount(code, weights=diff, minlength=len(edges) + 1)
    sizes = np.bincount(code, minlength=len(edges) + 1)
    means = np.divide(sums, sizes, out=np.zeros_like(sums), where=sizes > 0)
    root = metric == "rmse"
    sq_a = _row_loss(metric, y, candidate) if root else None

    def loss_diff(codes: Array, n: Array) -> float:
        mean = float(np.dot(means[codes], n) / n.sum())
        return mean if not root else _rmse_shift(sq_a, mean)

    return code, loss_diff


def _rmse_shift(sq_a: Array | None, mean_diff: float) -> float:
    # rmse_a - rmse_b from the mean squared-error difference, around the full-data level.
    if sq_a is None:
        raise InvalidInputError("rmse needs the squared errors of the first model")
    msa = float(sq_a.mean())
    msb = msa - mean_diff
    return float(np.sqrt(max(msa, 0.0)) - np.sqrt(max(msb, 0.0)))


def _row_loss(metric: str, y: Array, model: tuple[Array | None, Array]) -> Array:
    score, pred = model
    if metric == "log_loss":
        p = np.clip(score if score is not None else pred, 1e-15, 1 - 1e-15)
        loss: Array = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        return loss
    if metric == "brier":
        loss = np.square(np.asarray(score, dtype="float64") - y)
    elif metric == "rmse":
        loss = np.square(pred.astype("float64") - y)
    elif metric == "mae":
        loss = np.abs(pred.astype("float64") - y)
    else:
        raise InvalidInputError(f"champion_challenger does not support {metric}")
    return loss


def _score_bins(score: Array) -> Array:
    edges = np.unique(np.quantile(score, np.linspace(0, 1, SCORE_BINS + 1)[1:-1]))
    return np.searchsorted(edges, score, side="right")


def _binned_auc(counts: Array) -> float:
    """ROC AUC from (bin, label) counts: ties within a bin count one half."""
    neg, pos = counts[:, 0], counts[:, 1]
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float((pos * (below + 0.5 * neg)).sum() / total) if total else float("nan")


def _binned_ap(counts: Array) -> float:
    """Average precision from (bin, label) counts, thresholds at bin edges (high to low)."""
    neg, pos = counts[::-1, 0], counts[::-1, 1]
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    total = pos.sum()
    if not total:
        return float("nan")
    precision = tp / np.maximum(tp + fp, 1)
    return float((precision * pos).sum() / total)


def _confusion_metric(metric: str, label: Array, pred: Array, n: Array) -> float:
    tp = n[(label == 1) & (pred == 1)].sum()
    tn = n[(label == 0) & (pred == 0)].sum()
    fp = n[(label == 0) & (pred == 1)].sum()
    fn = n[(label == 1) & (pred == 0)].sum()
    if metric == "accuracy":
        return float((tp + tn) / n.sum())
    if metric == "precision":
        return float(tp / (tp + fp)) if tp + fp else 0.0
    if metric == "recall":
        return float(tp / (tp + fn)) if tp + fn else 0.0
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0
