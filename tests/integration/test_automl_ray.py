"""AutoML on Ray workers sharing one study in PostgreSQL (a private local Ray on 127.0.0.1,
usage statistics off)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import shipyard
import shipyard.automl
from shipyard.automl.distributed import CANCEL_GRACE
from shipyard.automl.trials import study_storage
from shipyard.sdk import context

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.xdist_group("ray"),
]


@pytest.fixture
def on_postgres(
    postgres_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_ray: None
) -> Iterator[str]:
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    monkeypatch.setenv("SHIPYARD_AUDIT_ANCHOR", str(tmp_path / "anchor" / "audit-anchor.json"))
    shipyard.set_uri(postgres_uri)
    yield postgres_uri
    shipyard.set_uri(None)


def trials_of(result: shipyard.automl.SearchResult) -> list[tuple[object, ...]]:
    with study_storage(result.storage) as storage:
        study = optuna.load_study(study_name=result.study_name, storage=storage)
        return [
            (t.params, t.value, t.state.name) for t in study.trials if t.state.name != "WAITING"
        ]


def test_one_ray_worker_with_a_fixed_seed_equals_the_local_search(on_postgres: str) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    same = {
        "time_budget": 120,
        "max_trials": 6,
        "seed": 5,
        "n_jobs": 1,
        "estimators": ["lgbm", "logistic_regression"],
    }
    local = shipyard.automl.search(X, y, **same)
    on_ray = shipyard.automl.search(X, y, executor="ray", n_workers=1, **same)

    # The study lives in the store's PostgreSQL database, in a schema of its own.
    assert on_ray.storage == local.storage
    assert "search_path%3Dt_" in local.storage and "_optuna" in local.storage
    assert trials_of(on_ray) == trials_of(local)
    assert on_ray.score == local.score
    pd.testing.assert_frame_equal(
        pd.DataFrame(on_ray.model.predict_proba(X)), pd.DataFrame(local.model.predict_proba(X))
    )
    # The worker recorded every trial as a child run of the search's run.
    runs = context.current().get_backend().tracking.search_runs(["automl"], max_results=100)
    assert sum(r.parent_id == on_ray.run_id for r in runs) == 6


def test_ray_workers_share_the_study_within_the_budget(on_postgres: str) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = shipyard.automl.search(
        X, y, executor="ray", n_workers=2, n_jobs=1, time_budget=8, seed=0
    )
    # The local search's slack (10%) plus the grace the driver gives Ray workers past the
    # deadline before cancelling them (their trial checks the budget between units of work).
    assert result.budget_used <= 8 * 1.10 + CANCEL_GRACE
    begun = trials_of(result)
    assert len(begun) == result.report["trials"]["total"] >= 4
    assert result.report["study"]["workers"] == 2
