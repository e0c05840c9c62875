"""Scoring one configuration: stratified folds, pruning between them, constraints measured.

Successive halving runs over data fractions: a trial reports its running mean after each
fold, and Optuna's pruner stops it at a rung when it is not among the best third there, so
a poor configuration costs one fold instead of all of them. Boosting early-stops on each
fold's validation rows; the final model is refitted on every row with the mean of the
rounds the folds kept.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.automl.metrics import Metric, Task
from shipyard.automl.space import Family, FitContext
from shipyard.core.errors import InvalidInputError

Array = np.ndarray[Any, Any]

#: Folds by training rows: small sets need more folds for a stable score.
FOLDS_SMALL, FOLDS_LARGE, LARGE_ROWS = 5, 3, 50_000
#: One-row predictions timed for the latency constraint (the median is kept).
LATENCY_CALLS = 25
#: ... or this many seconds of them, whichever ends first.
LATENCY_SECONDS = 0.15


@dataclass
class Dataset:
    """The training data as the search sees it: numeric arrays, label codes and folds."""

    X: Array
    y: Array
    columns: list[str]
    classes: list[Any]
    folds: list[tuple[Array, Array]]
    task: Task
    # Positions of categorical columns (their values are category codes, NaN for missing).
    categorical: tuple[int, ...] = ()
    # The most categories any categorical column has.
    max_categories: int = 0

    @property
    def rows(self) -> int:
        """Training rows."""
        return len(self.y)

    @property
    def positive_ratio(self) -> float:
        """Negatives per positive (binary), for XGBoost's class weight."""
        if self.task != "binary":
            return 1.0
        positives = float(np.sum(self.y == 1))
        return (len(self.y) - positives) / max(positives, 1.0)


def prepare(X: Any, y: Any, task: Task, seed: int, n_folds: int | None = None) -> Dataset:
    """Check the data and cut it into folds (stratified for classification).

    Raises:
        InvalidInputError: the data cannot be searched as given (empty, non-numeric
            features, a target with missing values, a class too small for the folds).
    """
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold

    # A shallow copy: naming the columns must not rename the caller's frame.
    frame = X.copy(deep=False) if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise InvalidInputError("automl needs at least one row and one feature; got none")
    categorical = [
        i
        for i, c in enumerate(frame.columns)
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(frame[c])
        or pd.api.types.is_string_dtype(frame[c])
    ]
    bad = [
        c
        for i, c in enumerate(frame.columns)
        if i not in categorical and not pd.api.types.is_numeric_dtype(frame[c])
    ]
    if bad:
        raise InvalidInputError(
            f"automl takes numeric, boolean and categorical features; {', '.join(bad[:5])} "
            f"{'is' if len(bad) == 1 else 'are'} not (dates: derive numbers from them first)"
        )
    target = pd.Series(np.asarray(y).ravel() if not isinstance(y, pd.Series) else y.to_numpy())
    if len(target) != len(frame):
        raise InvalidInputError(
            f"X and y must have the same rows; got {len(frame)} and {len(target)}"
        )
    if target.isna().any():
        raise InvalidInputError("the target has missing values; drop or fill those rows first")
    numbers = frame.copy()
    most = 0
    for i in categorical:
        codes = categories_of(frame.iloc[:, i]).cat.codes.to_numpy().astype(np.float64)
        codes[codes < 0] = np.nan
        most = max(most, len(categories_of(frame.iloc[:, i]).cat.categories))
        numbers[frame.columns[i]] = codes
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    classes: list[Any] = []
    if task == "regression":
        codes = target.to_numpy(dtype=np.float64)
    else:
        uniques = np.unique(target.to_numpy())
        classes = uniques.tolist()
        if task == "binary" and len(classes) != 2:
            raise InvalidInputError(
                f"a binary task needs exactly 2 classes in y; got {len(classes)}"
            )
        if task == "multiclass" and len(classes) < 3:
            raise InvalidInputError(
                f"a multiclass task needs 3 or more classes in y; got {len(classes)} "
                "(use task='binary')"
            )
        codes = np.searchsorted(uniques, target.to_numpy())
    k = n_folds or (FOLDS_SMALL if len(frame) < LARGE_ROWS else FOLDS_LARGE)
    if k < 2:
        raise InvalidInputError(f"folds must be 2 or more; got {k}")
    if task == "regression":
        splitter: Any = KFold(k, shuffle=True, random_state=seed)
    else:
        smallest = int(np.bincount(codes).min())
        if smallest < k:
            raise InvalidInputError(
                f"the smallest class has {smallest} rows: each of the {k} folds needs one"
            )
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    folds = [(tr, va) for tr, va in splitter.split(values, codes)]
    return Dataset(
        values, codes, list(frame.columns), classes, folds, task, tuple(categorical), most
    )


def categories_of(column: Any) -> Any:
    """A column as pandas categories (strings and objects become categories, sorted)."""
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        return column
    return column.astype("category")


def predictions(model: Any, X: Any, metric: Metric) -> Array:
    """What ``metric`` reads from ``model``: probabilities, labels or values."""
    if metric.reads == "proba":
        return np.asarray(model.predict_proba(X))
    return np.asarray(model.predict(X))


def score_model(model: Any, X: Any, y: Array, metric: Metric) -> float:
    """``metric`` of ``model`` on ``X, y``."""
    return metric.score(y, predictions(model, X, metric))


def predict_ms(model: Any, row: Any, max_seconds: float = LATENCY_SECONDS) -> float:
    """Median milliseconds of a one-row prediction (what a request to the model costs), over
    ``LATENCY_CALLS`` calls or ``max_seconds``, whichever ends first."""
    method = getattr(model, "predict_proba", None) or model.predict
    method(row)
    times: list[float] = []
    until = time.perf_counter() + max_seconds
    while len(times) < LATENCY_CALLS and (len(times) < 3 or time.perf_counter() < until):
        started = time.perf_counter()
        method(row)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def model_mb(model: Any, flavor: str, *, exact: bool = True) -> float:
    """Megabytes of the model as the registry stores it (LightGBM text, XGBoost UBJSON,
    skops for scikit-learn).

    skops walks a forest node by node (0.7 s for ten deep trees); without ``exact`` a
    scikit-learn model is sized by its pickle instead, a fast estimate of the same arrays.
    """
    if flavor == "lightgbm":
        return len(model.booster_.model_to_string().encode()) / 1e6
    if flavor == "xgboost":
        return len(model.get_booster().save_raw("ubj")) / 1e6
    if not exact:
        return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
    import skops.io as sio

    buffer = io.BytesIO(sio.dumps(model))
    return buffer.getbuffer().nbytes / 1e6


@dataclass
class Constraints:
    """Limits a candidate must meet, measured on it: ``max_predict_ms`` (median one-row
    prediction) and ``max_model_mb`` (stored size)."""

    max_predict_ms: float | None = None
    max_model_mb: float | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Constraints:
        """From ``{"max_predict_ms": 1, "max_model_mb": 5}``.

        Raises:
            InvalidInputError: an unknown key or a value that is not a positive number.
        """
        raw = dict(raw or {})
        known = {"max_predict_ms", "max_model_mb"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidInputError(
                f"constraints must be among {', '.join(sorted(known))}; got {', '.join(unknown)}"
            )
        out: dict[str, float] = {}
        for key, value in raw.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = -1.0
            if not number > 0:
                raise InvalidInputError(
                    f"constraint {key} must be a positive number; got {value!r}"
                )
            out[key] = number
        return cls(**out)

    @property
    def any(self) -> bool:
        """Whether any limit is set."""
        return self.max_predict_ms is not None or self.max_model_mb is not None

    def measure(self, model: Any, flavor: str, row: Any) -> dict[str, float]:
        """The model's figures for every limit (both, for the report), and the seconds
        measuring took. The size is exact (as stored) when a size limit is set."""
        began = time.perf_counter()
        exact = self.max_model_mb is not None or flavor != "sklearn"
        figures = {
            "predict_ms": predict_ms(model, row),
            "model_mb": model_mb(model, flavor, exact=exact),
        }
        figures["measure_seconds"] = time.perf_counter() - began
        return figures

    def violations(self, figures: dict[str, float]) -> dict[str, float]:
        """Optuna's constraint values by limit: positive where the limit is exceeded."""
        out = {}
        if self.max_predict_ms is not None:
            out["max_predict_ms"] = figures["predict_ms"] - self.max_predict_ms
        if self.max_model_mb is not None:
            out["max_model_mb"] = figures["model_mb"] - self.max_model_mb
        return out

    def to_dict(self) -> dict[str, float]:
        """The limits that are set."""
        return {
            k: v
            for k, v in (
                ("max_predict_ms", self.max_predict_ms),
                ("max_model_mb", self.max_model_mb),
            )
            if v is not None
        }


@dataclass
class TrialScore:
    """What one configuration scored on the folds it reached."""

    scores: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    violations: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean over the folds reached."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Spread over the folds reached."""
        return float(np.std(self.scores))

    @property
    def feasible(self) -> bool:
        """Whether every constraint held."""
        return all(v <= 0 for v in self.violations.values())


def evaluate(
    trial: Any,
    family: Family,
    params: dict[str, Any],
    data: Dataset,
    ctx: FitContext,
    constraints: Constraints,
    out: TrialScore,
) -> TrialScore:
    """Score ``params`` fold by fold into ``out``, reporting to ``trial`` for pruning.

    Raises:
        optuna.TrialPruned: the pruner stopped it at a rung.
        TrialInterruptedError: the budget ran out during a fit.
    """
    import optuna

    for i, (train, valid) in enumerate(data.folds):
        started = time.perf_counter()
        fitted = family.fit(
            params, ctx, data.X[train], data.y[train], (data.X[valid], data.y[valid])
        )
        out.fit_seconds.append(time.perf_counter() - started)
        score = (
            fitted.best_score
            if fitted.best_score is not None
            else score_model(fitted.model, data.X[valid], data.y[valid], ctx.metric)
        )
        out.scores.append(float(score))
        if fitted.rounds is not None:
            out.rounds.append(fitted.rounds)
        if i == 0 and constraints.any:
            out.figures = constraints.measure(fitted.model, family.flavor, data.X[valid[:1]])
            out.violations = constraints.violations(out.figures)
            if not out.feasible:
                return out  # infeasible: the sampler learns from it; no more folds
        if i < len(data.folds) - 1:
            trial.report(out.mean, step=i + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {i + 1} of {len(data.folds)} folds")
    return out
