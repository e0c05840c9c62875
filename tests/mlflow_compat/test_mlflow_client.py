"""Existing MLflow code works against Shipyard unchanged: the real client, a real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier

import shipyard
from shipyard.core.actor import acting_as
from tests.mlflow_compat.conftest import Site

pytestmark = pytest.mark.xdist_group("mlflow")


def test_tracking_calls_land_as_shipyard_runs(site: Site) -> None:
    seen = site.client("tracking", "mia")
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"model": "lgbm", "depth": "6", "lr": "0.1"}
    assert seen["history"] == pytest.approx([0.80, 0.81, 0.82, 0.83, 0.84])
    assert seen["child_history"] == 50
    assert seen["artifacts"] == ["config", "notes"]
    assert seen["nested"] == ["notes/note.txt"]
    assert seen["downloaded"] == "hello from mlflow"
    assert seen["search_run_ids"] == [seen["run_id"]]
    assert {"metrics.auc", "params.model"} <= set(seen["search_columns"])
    assert seen["children"] == [seen["child_id"]]
    assert seen["by_name"] == seen["experiment_id"] and seen["missing"] is None
    # Who trained it is the token's user, whatever the client's OS user is.
    assert seen["tags"]["mlflow.user"] == "mia"

    backend = site.backend()
    try:
        run = backend.tracking.get_run(seen["run_id"])
        assert run.tags["shipyard.user"] == "mia" and run.name == "parent"
        assert [m.step for m in backend.tracking.get_metric_history(run.id, "auc")] == [
            0,
            1,
            2,
            3,
            4,
        ]
        assert (
            backend.tracking.read_artifact_bytes(run.id, "notes/note.txt") == b"hello from mlflow"
        )
        assert backend.tracking.get_run(seen["child_id"]).parent_id == run.id
        assert backend.tracking.get_run(seen["child_id"]).params == {"fold": "3"}
    finally:
        backend.close()


def test_mlflow_models_register_and_load_in_both_clients(site: Site) -> None:
    seen = site.client("models", "ada")
    # Autolog: params, training metrics and its logged model recorded as the run's output.
    assert seen["auto_params"] >= 10
    assert "training_roc_auc" in seen["auto_metrics"]
    assert len(seen["auto_outputs"]) == 1
    assert set(seen["logged_models"]) == {seen["model_id"], *seen["auto_outputs"]}
    # register_model by runs:/ and by models:/<model id>; aliases; pyfunc and flavour loads.
    assert seen["versions"] == ["1", "2"] and seen["alias_version"] == "2"
    assert seen["pyfunc"] == seen["expected"]
    assert seen["searched"] == ["1", "2"]

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    backend = site.backend()
    try:
        version = backend.registry.get_version("compat-lr", 1)
        assert version.run_id == seen["run_id"] and version.created_by == "ada"
        assert {"MLmodel", "model.skops"} <= set(version.files)
        # Shipyard loads MLflow's skops package itself, with its own allow-list.
        with acting_as("ada"):
            model, _ = backend.registry.load("models:/compat-lr@challenger")
        np.testing.assert_allclose(model.predict_proba(X.iloc[:20])[:, 1], seen["proba"])
        events = [e.action for e in backend.governance.audit.events(obj="models:/compat-lr")]
        assert "model.registered" in " ".join(events)
        assert backend.governance.audit.verify().ok
    finally:
        backend.close()


def test_shipyard_versions_load_in_a_plain_mlflow_environment(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered by Shipyard's SDK through the server; loaded by MLflow with no shipyard."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    monkeypatch.setenv("SHIPYARD_TOKEN", site.tokens["max"])
    shipyard.set_uri(site.url)
    try:
        version = shipyard.register_model("shipyard-hgb", model, X.iloc[:5])
    finally:
        shipyard.set_uri(None)
    rows = tmp_path / "rows.json"
    X.iloc[:25].to_json(rows, orient="split")
    seen = site.client(
        "shipyard_models",
        "vic",
        MODEL_URI=f"models:/shipyard-hgb/{version.version}",
        ROWS=str(rows),
    )
    assert seen["loader"] == "mlflow.sklearn"
    assert seen["pyfunc"] == seen["local"] == [int(v) for v in model.predict(X.iloc[:25])]
    np.testing.assert_allclose(seen["proba"], model.predict_proba(X.iloc[:25])[:, 1])
    assert seen["inputs"] == list(X.columns)
    assert {"MLmodel", "model.skops", "requirements.txt", "conda.yaml", "python_env.yaml"} <= set(
        seen["files"]
    )


def test_token_rules_hold_for_mlflow_clients(site: Site) -> None:
    viewer = site.client("auth", "vic")
    assert viewer["search"] == "OK"
    assert viewer["create_experiment"] == "PERMISSION_DENIED"

    other = site.client("auth", "max")
    member = site.client("auth", "mia", OTHER_RUN=other["run_id"], MODEL="compat-lr")
    assert member["run_user"] == "mia"
    assert member["forge_user"] == "PERMISSION_DENIED"
    assert member["log_to_other"] == "PERMISSION_DENIED"
    # champion moves through approvals, never by a member's alias call.
    assert member["champion"] == "PERMISSION_DENIED"

    anonymous = site.client("auth", None)
    assert anonymous["search"] == "UNAUTHENTICATED"
