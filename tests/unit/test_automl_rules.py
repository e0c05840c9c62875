"""AutoML's rules without a store: metrics, constraints, families allowed, data checks and
the budget's stop inside a fit."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from shipyard.automl.budget import Budget, StopAt, TrialInterruptedError
from shipyard.automl.evaluate import Constraints, prepare
from shipyard.automl.metrics import get_metric, metric_names
from shipyard.automl.space import FAMILIES, FitContext, choose_families
from shipyard.core.errors import InvalidInputError, PermissionDeniedError


def test_metric_defaults_and_directions() -> None:
    assert get_metric(None, "binary").name == "roc_auc"
    assert get_metric(None, "multiclass").name == "log_loss"
    assert get_metric(None, "regression").name == "rmse"
    assert get_metric("log_loss", "binary").direction == "minimize"
    assert get_metric("pr_auc", "binary").direction == "maximize"
    assert "recall_at_precision:P" in metric_names("binary")


def test_metric_unknown_or_wrong_task_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInputError, match=r"must be one of .*roc_auc.*got 'auc'"):
        get_metric("auc", "binary")
    with pytest.raises(InvalidInputError, match="regression task"):
        get_metric("roc_auc", "regression")
    with pytest.raises(InvalidInputError, match="task must be one of"):
        get_metric(None, "ranking")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        get_metric("recall_at_precision:1.5", "binary")


def test_recall_at_precision_is_the_best_recall_meeting_the_precision() -> None:
    metric = get_metric("recall_at_precision:0.75", "binary")
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # Ranked: 1 1 0 1 1 0 0 0 -> at the 4th positive precision is 4/5 (0.8), recall 1.
    proba = np.array([0.9, 0.8, 0.6, 0.5, 0.7, 0.2, 0.1, 0.05])
    assert metric.score(y, proba) == pytest.approx(1.0)
    strict = get_metric("recall_at_precision:0.9", "binary")
    assert strict.score(y, proba) == pytest.approx(0.5)  # the top two only


def test_constraints_parse_and_violations() -> None:
    limits = Constraints.parse({"max_predict_ms": 1, "max_model_mb": "5"})
    assert limits.to_dict() == {"max_predict_ms": 1.0, "max_model_mb": 5.0}
    assert limits.violations({"predict_ms": 0.4, "model_mb": 7.0}) == {
        "max_predict_ms": pytest.approx(-0.6),
        "max_model_mb": pytest.approx(2.0),
    }
    with pytest.raises(InvalidInputError, match="constraints must be among"):
        Constraints.parse({"max_latency": 1})
    with pytest.raises(InvalidInputError, match="positive number"):
        Constraints.parse({"max_model_mb": 0})


def test_allowed_estimators_are_matched_as_the_registry_matches_them() -> None:
    chosen, notes = choose_families("binary", None, ["lightgbm", "logistic_regression"])
    assert [f.name for f in chosen] == ["lgbm", "logistic_regression"]
    assert any("random_forest: not in the model's allowed" in n for n in notes)
    # "random_forest" allows RandomForestClassifier, as at registration.
    chosen, _ = choose_families("binary", ["random_forest", "lgbm"], ["random_forest"])
    assert [f.name for f in chosen] == ["random_forest"]
    with pytest.raises(PermissionDeniedError, match="allows only xgboost"):
        choose_families("binary", ["random_forest"], ["xgboost"])
    with pytest.raises(InvalidInputError, match="estimators must be among"):
        choose_families("binary", ["catboost"], None)
    chosen, notes = choose_families("regression", ["logistic_regression", "ridge"], None)
    assert [f.name for f in chosen] == ["ridge"]
    assert notes == ["logistic_regression: not for a regression task"]


def test_prepare_cuts_stratified_folds_and_codes_categories(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=300),
            "country": rng.choice(["PT", "FR", "DE"], 300),
            "flag": rng.random(300) < 0.5,
        }
    )
    y = (rng.random(300) < 0.1).astype(int)
    data = prepare(frame, y, "binary", seed)
    assert data.categorical == (1,)
    assert data.max_categories == 3
    assert set(np.unique(data.X[:, 1])) == {0.0, 1.0, 2.0}
    assert len(data.folds) == 5
    for _, valid in data.folds:  # every fold holds its share of the rare class
        assert abs(y[valid].mean() - y.mean()) < 0.02

    numbered = frame.set_axis([10, 20, 30], axis=1)
    assert prepare(numbered, y, "binary", seed).columns == ["10", "20", "30"]
    assert list(numbered.columns) == [10, 20, 30]  # the caller's frame keeps its names


def test_prepare_refuses_data_it_cannot_search() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0)})
    with pytest.raises(InvalidInputError, match="exactly 2 classes"):
        prepare(frame, np.arange(20) % 3, "binary", 0)
    with pytest.raises(InvalidInputError, match="smallest class has 2 rows"):
        prepare(frame, np.r_[np.zeros(18), np.ones(2)], "binary", 0)
    with pytest.raises(InvalidInputError, match="missing values"):
        prepare(frame, np.r_[np.zeros(19), np.nan], "regression", 0)
    dated = frame.assign(when=pd.date_range("2026-01-01", periods=20))
    with pytest.raises(InvalidInputError, match="when is not"):
        prepare(dated, np.arange(20) % 2, "binary", 0)


def test_a_fit_stops_when_the_budget_says_so(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """LightGBM checks the deadline between rounds: a fit of 20,000 rounds is cut short."""
    from shipyard.automl import space

    monkeypatch.setattr(space, "PATIENCE", 100_000)  # early stopping must not end it first
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4000, 10))
    y = (X[:, 0] + rng.normal(size=4000) > 0).astype(int)
    family = FAMILIES["lgbm"]
    ctx = FitContext("binary", get_metric("roc_auc", "binary"), 2, seed, 1)
    params = {**family.starts(ctx)[0], "n_estimators": 20_000, "learning_rate": 0.001}
    ctx.stop = StopAt(time.time() + 0.5)
    started = time.perf_counter()
    with pytest.raises(TrialInterruptedError):
        family.fit(params, ctx, X[:3000], y[:3000], (X[3000:], y[3000:]))
    assert time.perf_counter() - started < 2.0
    # The final refit is stopped gracefully instead: a smaller model, flagged as cut.
    ctx.stop = StopAt(time.time() + 0.5)
    fitted = family.refit(params, ctx, X, y, 20_000)
    assert fitted.cut
    assert 0 < fitted.rounds < 20_000


def test_budget_counts_wall_clock() -> None:
    budget = Budget(time.time() - 5, 10)
    assert 4.5 < budget.elapsed() < 6
    assert 3.5 < budget.left(reserve=1) < 4.5
