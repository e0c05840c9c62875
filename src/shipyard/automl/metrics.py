"""The metrics a search optimises and reports, with their direction and what they read.

Names follow scikit-learn's and FLAML's habits (``roc_auc``, ``log_loss``, ``rmse``);
``pr_auc`` is scikit-learn's average precision, and ``recall_at_precision:0.9`` the recall
reached at the best threshold whose precision is at least 0.9 (a fraud team's usual ask:
"catch as much as we can while nine alerts in ten are real").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from shipyard.core.errors import InvalidInputError

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")

#: The metric a task is searched on when none is named.
DEFAULT_METRIC: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
}


@dataclass(frozen=True)
class Metric:
    """One metric: its name, whether higher is better, and what it reads (labels or scores)."""

    name: str
    maximize: bool
    reads: Literal["proba", "label", "value"]
    score: Callable[[np.ndarray[Any, Any], np.ndarray[Any, Any]], float]

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Optuna's word for it."""
        return "maximize" if self.maximize else "minimize"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b``."""
        return a > b if self.maximize else a < b

    @property
    def worst(self) -> float:
        """A value every real score beats."""
        return -np.inf if self.maximize else np.inf


def _positive(proba: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return proba[:, 1] if proba.ndim == 2 else proba


def _roc_auc(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
    from sklearn.metrics import roc_auc_score

    if p.ndim == 2 and p.shape[1] > 2:
        return float(roc_auc_score(y, p, multi_class="ovr", labels=np.arange(p.shape[1])))
    return float(roc_auc_score(y, _positive(p)))


def _pr_auc(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, _positive(p)))


def _log_loss(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
    from sklearn.metrics import log_loss

    labels = np.arange(p.shape[1]) if p.ndim == 2 else None
    return float(log_loss(y, p, labels=labels))


def recall_at_precision(precision: float) -> Callable[..., float]:
    """The recall of the best threshold whose precision reaches ``precision`` (0 if none)."""

    def score(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
        from sklearn.metrics import precision_recall_curve

        prec, rec, _ = precision_recall_curve(y, _positive(p))
        reached = rec[prec >= precision]
        return float(reached.max()) if reached.size else 0.0

    return score


def _accuracy(y: np.ndarray[Any, Any], label: np.ndarray[Any, Any]) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(label)))


def _f1(y: np.ndarray[Any, Any], label: np.ndarray[Any, Any]) -> float:
    from sklearn.metrics import f1_score

    average = "binary" if len(np.unique(y)) <= 2 else "macro"
    return float(f1_score(y, label, average=average))


def _rmse(y: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(v, float)) ** 2)))


def _mae(y: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(v, float))))


def _r2(y: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, v))


_CLASSIFICATION: dict[str, Metric] = {
    "roc_auc": Metric("roc_auc", True, "proba", _roc_auc),
    "log_loss": Metric("log_loss", False, "proba", _log_loss),
    "accuracy": Metric("accuracy", True, "label", _accuracy),
    "f1": Metric("f1", True, "label", _f1),
}
_BINARY_ONLY: dict[str, Metric] = {
    "pr_auc": Metric("pr_auc", True, "proba", _pr_auc),
}
_REGRESSION: dict[str, Metric] = {
    "rmse": Metric("rmse", False, "value", _rmse),
    "mae": Metric("mae", False, "value", _mae),
    "r2": Metric("r2", True, "value", _r2),
}


def metric_names(task: Task) -> list[str]:
    """The metrics a task can be searched on."""
    if task == "regression":
        return sorted(_REGRESSION)
    names = sorted(_CLASSIFICATION)
    if task == "binary":
        names += [*sorted(_BINARY_ONLY), "recall_at_precision:P"]
    return names


def get_metric(name: str | None, task: Task) -> Metric:
    """The metric called ``name`` for ``task`` (its default when ``name`` is None).

    Raises:
        InvalidInputError: the task does not know the metric.
    """
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    name = name or DEFAULT_METRIC[task]
    if task == "binary" and name.startswith("recall_at_precision"):
        _, _, raw = name.partition(":")
        try:
            level = float(raw or "0.9")
        except ValueError:
            level = -1.0
        if not 0 < level < 1:
            raise InvalidInputError(
                f"recall_at_precision takes a precision between 0 and 1 "
                f"(recall_at_precision:0.9); got {name!r}"
            )
        return Metric(f"recall_at_precision:{level:g}", True, "proba", recall_at_precision(level))
    table = dict(_REGRESSION) if task == "regression" else dict(_CLASSIFICATION)
    if task == "binary":
        table.update(_BINARY_ONLY)
    if name not in table:
        raise InvalidInputError(
            f"metric for a {task} task must be one of {', '.join(metric_names(task))}; got {name!r}"
        )
    return table[name]
