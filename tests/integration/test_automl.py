"""AutoML on real stores: tracked trials, the study in the store's database, the budget
held, governance enforced, the winner registered with its search report and lineage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

import shipyard
import shipyard.automl
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.gates.service import TRAINING_DATA
from shipyard.sdk import context


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "store"
    shipyard.set_uri(str(home))
    yield home
    shipyard.set_uri(None)


@pytest.fixture
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def children(run_id: str) -> list[shipyard.Run]:
    runs = context.current().get_backend().tracking.search_runs(["automl"], max_results=1000)
    return [r for r in runs if r.parent_id == run_id]


@pytest.mark.usefixtures("store")
def test_search_tracks_every_trial_and_keeps_the_study_in_the_store(
    store: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = cancer
    result = shipyard.automl.search(X, y, task="binary", metric="pr_auc", time_budget=6, seed=0)

    # FLAML's semantics: the wall clock is the budget, overrun at most 10%.
    assert result.budget_used <= 6 * 1.10
    study = optuna.load_study(study_name=result.study_name, storage=result.storage)
    assert result.storage == f"sqlite:///{(store / 'optuna.db').resolve()}"
    # Starting points the budget left untried stay queued (WAITING) for a resumed search.
    trials = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert len(trials) == result.report["trials"]["total"] >= 4
    # The library defaults come first: the search never starts below them.
    assert trials[0].params["estimator"] == "lgbm"
    assert trials[0].params["lgbm.num_leaves"] == 31

    runs = {r.tags["shipyard.automl.trial"]: r for r in children(result.run_id)}
    assert set(runs) == {str(t.number) for t in trials}
    for trial in trials:
        run = runs[str(trial.number)]
        assert run.params["estimator"] == trial.params["estimator"]
        assert "duration_seconds" in run.metrics
        assert run.tags["shipyard.automl.pruned"] == str(
            trial.state == optuna.trial.TrialState.PRUNED
        )
        if trial.state == optuna.trial.TrialState.COMPLETE:
            folds = shipyard.get_metric_history(run.id, "pr_auc")
            assert [p.step for p in folds] == list(range(5))
            assert run.metrics["cv_pr_auc"] == pytest.approx(trial.value)
    parent = shipyard.get_run(result.run_id)
    assert parent.status.value == "FINISHED"
    assert parent.metrics["cv_pr_auc"] == pytest.approx(result.score)
    assert parent.tags["shipyard.automl.study"] == result.study_name
    # The winner is refitted on every row and beats a coin on the data it learnt.
    proba = result.model.predict_proba(X)[:, 1]
    assert proba[y.to_numpy() == 1].mean() > proba[y.to_numpy() == 0].mean() + 0.5
    board = result.leaderboard
    assert board[0]["cv_score"] == pytest.approx(result.score)
    assert [r["cv_score"] for r in board] == sorted((r["cv_score"] for r in board), reverse=True)


def test_a_fixed_seed_and_trial_cap_give_the_same_search(
    store: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = cancer

    def searched() -> list[tuple[dict[str, object], float | None, str]]:
        result = shipyard.automl.search(
            X,
            y,
            time_budget=120,
            max_trials=9,
            seed=3,
            n_jobs=1,
            estimators=["lgbm", "logistic_regression"],
        )
        study = optuna.load_study(study_name=result.study_name, storage=result.storage)
        return [(t.params, t.value, t.state.name) for t in study.trials]

    first = searched()
    assert len(first) == 9
    assert first == searched()


def test_the_budget_stops_slow_trials(store: Path, seed: int) -> None:
    """Forests of up to 500 trees on 8,000 rows, with 6 seconds: the first forest hardly
    finishes its folds, yet the search returns the best so far within 10% of the budget."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(8_000, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X["x0"] + X["x1"] * X["x2"] + rng.normal(size=8_000) > 0).astype(int)
    result = shipyard.automl.search(X, y, time_budget=6, estimators=["random_forest"], seed=0)
    assert result.budget_used <= 6 * 1.10
    assert result.estimator == "random_forest"


def test_governance_limits_the_search_and_the_winner_is_a_candidate_with_its_report(
    store: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    registry = shipyard.model_registry()
    registry.create_model("credit")
    registry.set_tag("credit", None, "shipyard.allowed_estimators", "logistic_regression")
    X, y = cancer
    with pytest.raises(PermissionDeniedError, match="allows only logistic_regression"):
        shipyard.automl.search(X, y, time_budget=3, estimators=["lgbm"], register="credit")

    result = shipyard.automl.search(X, y, time_budget=4, seed=0, register="credit")
    assert result.estimator == "logistic_regression"
    assert {r["estimator"] for r in result.leaderboard} == {"logistic_regression"}
    mv = result.model_version
    assert mv is not None
    assert mv.state.value == "candidate"
    assert mv.tags["shipyard.automl.study"] == result.study_name
    search = mv.card["model_parameters"]["search"]
    assert search["leaderboard"] == result.leaderboard
    assert search["budget"]["seconds"] == 4
    assert set(search["search_space"]) == {"logistic_regression"}
    assert any("lgbm: not in the model's allowed" in n for n in search["skipped"])
    # Lineage: the version names its training run, which keeps the training data.
    assert (
        mv.card["model_parameters"]["data"]["training"]["lineage"]["training_run"] == result.run_id
    )
    names = [a.name for a in shipyard.model_registry().tracking.list_artifacts(result.run_id)]
    assert TRAINING_DATA in names
    assert shipyard.automl.REPORT_ARTIFACT in names
    loaded = shipyard.load_model("models:/credit/1")
    assert loaded.predict(X.head(3)).shape == (3,)


def test_constraints_are_measured_on_the_candidate(
    store: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    """A size limit a forest cannot meet: forests are infeasible, the winner meets it on
    every row (fitted on more rows, a model can grow past a limit its folds met)."""
    X, y = cancer
    result = shipyard.automl.search(
        X,
        y,
        time_budget=5,
        seed=0,
        estimators=["random_forest", "logistic_regression"],
        constraints={"max_model_mb": 0.5},
    )
    assert result.estimator == "logistic_regression"
    candidate = result.report["candidate"]
    assert candidate["constraints_met"]
    assert 0 < candidate["model_mb"] <= 0.5
    assert candidate["predict_ms"] > 0
    assert result.report["trials"]["infeasible"] >= 1


@pytest.mark.usefixtures("store")
def test_multiclass_regression_and_categorical_features(seed: int) -> None:
    X, y = load_digits(return_X_y=True, as_frame=True)
    multi = shipyard.automl.search(
        X[:600],
        y[:600],
        task="multiclass",
        time_budget=5,
        max_trials=4,
        seed=0,
        estimators=["lgbm", "logistic_regression"],
    )
    assert multi.metric == "log_loss"
    assert multi.model.predict_proba(X[:3]).shape == (3, 10)

    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = shipyard.automl.search(Xr, yr, task="regression", time_budget=4, max_trials=4, seed=0)
    assert reg.metric == "rmse"
    assert reg.score < float(np.std(yr))  # better than predicting the mean

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 3000), "country": rng.choice(["PT", "FR", "US"], 3000)}
    )
    label = ((frame["country"] == "US") & (frame["amount"] > 20)).astype(int)
    cat = shipyard.automl.search(frame, label, time_budget=6, max_trials=6, seed=0)
    assert "xgboost: categorical columns" in " ".join(cat.report["skipped"])
    assert cat.score > 0.95
    mv = cat.register("by-country")
    served = shipyard.load_model(f"models:/by-country/{mv.version}")
    assert served.predict(frame.head(4)).tolist() == cat.predict(frame.head(4)).tolist()


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize("family", ["lgbm", "hist_gb", "random_forest", "logistic_regression"])
def test_a_winner_on_text_columns_predicts_raw_rows_as_its_registered_version(
    family: str, seed: int
) -> None:
    """Whichever family wins, the result and the registered version take the rows the
    search took (a text column included) and answer alike; an unseen value is missing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 1500), "country": rng.choice(["PT", "FR", "US"], 1500)}
    )
    label = ((frame["country"] == "US") & (frame["amount"] > 20)).astype(int)
    result = shipyard.automl.search(
        frame, label, time_budget=20, max_trials=1, seed=0, estimators=[family]
    )
    assert result.estimator == family
    rows = pd.concat([frame.head(6), pd.DataFrame({"amount": [30.0], "country": ["JP"]})])
    mine = result.predict(rows)
    assert mine.shape == (7,)
    assert result.predict_proba(rows).shape == (7, 2)
    assert result.predict(rows.to_numpy()).tolist() == mine.tolist()  # an array, by position
    mv = result.register(f"text-{family.replace('_', '-')}")
    served = shipyard.load_model(f"models:/{mv.name}/{mv.version}")
    assert served.predict(rows).tolist() == mine.tolist()
    # A frame's columns are taken by name, whatever their order; an array's by position.
    assert result.predict(rows[["country", "amount"]].assign(extra=1)).tolist() == mine.tolist()
    with pytest.raises(InvalidInputError, match=r"lack the model's column\(s\) country"):
        result.predict(frame[["amount"]])
    with pytest.raises(InvalidInputError, match="the model takes 2 columns"):
        result.predict(frame[["amount"]].to_numpy())
    with pytest.raises(InvalidInputError, match="column 'amount' is not float64"):
        result.predict(pd.DataFrame({"amount": ["lots"], "country": ["PT"]}))


@pytest.mark.usefixtures("store")
def test_bad_arguments_are_refused_before_anything_runs(
    cancer: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = cancer
    with pytest.raises(InvalidInputError, match="time_budget must be a positive"):
        shipyard.automl.search(X, y, time_budget=0)
    with pytest.raises(InvalidInputError, match="n_workers > 1 needs executor='ray'"):
        shipyard.automl.search(X, y, n_workers=2)
    with pytest.raises(InvalidInputError, match="no configuration finished"):
        shipyard.automl.search(X, y, time_budget=0.05)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **env},
        timeout=300,
    )


@pytest.mark.e2e
def test_cli_runs_a_search_through_a_token_auth_server(
    token_server: object,
    tmp_path: Path,
    cancer: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = cancer
    path = tmp_path / "cancer.parquet"
    X.assign(malignant=y).to_parquet(path)
    env = {"SHIPYARD_URI": token_server.url, "SHIPYARD_TOKEN": token_server.token}  # type: ignore[attr-defined]
    # A budget a loaded CI machine cannot spend before the first trial (5 s once ran out
    # while the run was being created through the server); --max-trials keeps it short.
    done = cli(
        "automl",
        "run",
        "--data",
        str(path),
        "--target",
        "malignant",
        "--time-budget",
        "30",
        "--max-trials",
        "4",
        "--estimators",
        "lgbm,logistic_regression",
        "--register",
        "cancer",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model_version"] == {"name": "cancer", "version": 1, "state": "candidate"}
    assert summary["budget"]["used_seconds"] <= 30 * 1.10
    assert summary["trials"]["total"] <= 4
    # The server registered it from the run's artifacts: the card carries the report.
    monkeypatch.setenv("SHIPYARD_TOKEN", env["SHIPYARD_TOKEN"])
    shipyard.set_uri(token_server.url)  # type: ignore[attr-defined]
    try:
        mv = shipyard.get_model_version("cancer", 1)
        assert mv.card["model_parameters"]["search"]["leaderboard"] == summary["leaderboard"]
        run = shipyard.get_run(summary["run_id"])
        assert run.tags["shipyard.automl.source"] == f"file:{path.resolve()}"
        trials = [r for r in shipyard.search_runs("automl") if r.parent_id == run.id]
        assert len(trials) == summary["trials"]["total"]
    finally:
        shipyard.set_uri(None)

    missing = cli("automl", "run", "--data", str(path), "--target", "nope", env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: the data has no column 'nope'")
    assert "Traceback" not in missing.stderr
