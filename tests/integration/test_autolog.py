"""autolog records params, training metrics and a skops model of a scikit-learn fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard


@pytest.fixture
def store(tmp_path: Path):
    shipyard.set_uri(str(tmp_path / "store"))
    shipyard.autolog()
    yield
    shipyard.autolog(disable=True)
    shipyard.set_uri(None)


@pytest.mark.usefixtures("store")
def test_classifier_pipeline_logs_one_run_with_model(tmp_path: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X, y)
    runs = shipyard.search_runs("Default").runs
    assert len(runs) == 1  # the inner fits of the pipeline do not make runs of their own
    run = runs[0]
    assert run.status.value == "FINISHED"
    assert run.tags["estimator_name"] == "Pipeline"
    assert run.params["logisticregression__max_iter"] == "200"
    assert 0.95 < run.metrics["training_roc_auc"] <= 1.0
    assert run.metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    # The run holds a full model package: loadable by URI, with a signature from X.
    loaded = shipyard.load_model(f"runs:/{run.id}/model")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert len(loaded.signature.inputs) == X.shape[1]
    names = {a.name for a in shipyard.model_registry().tracking.list_artifacts(run.id)}
    assert {"model/MLmodel", "model/model.skops", "model/requirements.txt"} <= names


@pytest.mark.usefixtures("store")
def test_regressor_inside_an_active_run_logs_there() -> None:
    X, y = load_diabetes(return_X_y=True)
    with shipyard.start_run(experiment="reg") as run:
        Ridge(alpha=0.5).fit(X, y)
    got = shipyard.get_run(run.id)
    assert got.params["alpha"] == "0.5"
    assert {"training_r2_score", "training_root_mean_squared_error"} <= set(got.metrics)


@pytest.mark.usefixtures("store")
def test_failed_fit_marks_the_run_failed() -> None:
    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit(np.zeros((3, 2)), np.array([0, 0, 0]))
    assert shipyard.search_runs("Default").runs[0].status.value == "FAILED"
