"""Scenarios run by the real MLflow client (and huggingface_hub), in an environment of its
own (not Shipyard's).

``python client.py <scenario> <tracking uri>`` prints one JSON line with what the client
saw; the tests compare it with what Shipyard stored. Nothing here imports Shipyard.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException


def tracking() -> dict[str, Any]:
    """Experiments, runs (nested), params, metric history, tags, batches, artifacts, search."""
    mlflow.set_experiment("mlflow-compat")
    client = MlflowClient()
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("model", "lgbm")
        mlflow.log_params({"depth": 6, "lr": 0.1})
        for step in range(5):
            mlflow.log_metric("auc", 0.80 + step / 100, step=step)
        mlflow.log_metrics({"loss": 0.25, "f1": 0.5})
        mlflow.set_tags({"team": "risk", "use_case": "fraud"})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "note.txt")
            with open(path, "w") as f:
                f.write("hello from mlflow")
            mlflow.log_artifact(path, artifact_path="notes")
        mlflow.log_dict({"threshold": 0.5}, "config/settings.json")
        with mlflow.start_run(run_name="child", nested=True) as child:
            client.log_batch(
                child.info.run_id,
                metrics=[
                    Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(50)
                ],
                params=[Param("fold", "3")],
                tags=[RunTag("stage", "cv")],
            )
    run = client.get_run(parent.info.run_id)
    frame = mlflow.search_runs(
        filter_string="metrics.auc > 0.5 and params.model = 'lgbm'", order_by=["metrics.auc DESC"]
    )
    local = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="notes/note.txt"
    )
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return {
        "experiment_id": run.info.experiment_id,
        "run_id": run.info.run_id,
        "child_id": child.info.run_id,
        "status": run.info.status,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.source")},
        "history": [m.value for m in client.get_metric_history(run.info.run_id, "auc")],
        "child_history": len(client.get_metric_history(child.info.run_id, "loss")),
        "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
        "nested": sorted(a.path for a in client.list_artifacts(run.info.run_id, "notes")),
        "downloaded": open(local).read(),
        "search_columns": sorted(
            c for c in frame.columns if c.split(".")[0] in ("metrics", "params")
        ),
        "search_run_ids": frame["run_id"].tolist(),
        "children": [r.info.run_id for r in children],
        "by_name": mlflow.get_experiment_by_name("mlflow-compat").experiment_id,
        "missing": mlflow.get_experiment_by_name("no-such-experiment"),
    }


def models() -> dict[str, Any]:
    """Autolog, log_model (skops), register by runs:/ and models:/, aliases, pyfunc loads."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlflow.set_experiment("mlflow-compat-models")
    mlflow.sklearn.autolog(log_input_examples=False, log_datasets=True)
    with mlflow.start_run() as auto:
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    mlflow.sklearn.autolog(disable=True)
    auto_run = MlflowClient().get_run(auto.info.run_id)
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=5000).fit(X, y)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=["scikit-learn"]
        )
    first = mlflow.register_model(f"runs:/{run.info.run_id}/model", "compat-lr")
    second = mlflow.register_model(info.model_uri, "compat-lr")
    client = MlflowClient()
    client.set_registered_model_alias("compat-lr", "challenger", second.version)
    by_alias = client.get_model_version_by_alias("compat-lr", "challenger")
    loaded = mlflow.pyfunc.load_model("models:/compat-lr/1")
    native = mlflow.sklearn.load_model("models:/compat-lr@challenger")
    rows = X.iloc[:20]
    return {
        "auto_run": auto.info.run_id,
        "auto_params": len(auto_run.data.params),
        "auto_metrics": sorted(auto_run.data.metrics),
        "auto_outputs": [o.model_id for o in auto_run.outputs.model_outputs],
        "run_id": run.info.run_id,
        "model_id": info.model_id,
        "versions": [first.version, second.version],
        "alias_version": by_alias.version,
        "pyfunc": [int(v) for v in loaded.predict(rows)],
        "proba": [float(p) for p in native.predict_proba(rows)[:, 1]],
        "expected": [int(v) for v in model.predict(rows)],
        "latest": [v.version for v in client.get_latest_versions("compat-lr")],
        "searched": sorted(v.version for v in client.search_model_versions("name='compat-lr'")),
        "logged_models": [m.model_id for m in mlflow.search_logged_models(output_format="list")],
    }


def shipyard_models() -> dict[str, Any]:
    """A version Shipyard registered, loaded by MLflow alone (no shipyard installed here)."""
    import pandas as pd

    uri = os.environ["MODEL_URI"]
    rows = pd.read_json(os.environ["ROWS"], orient="split")
    pyfunc = mlflow.pyfunc.load_model(uri)
    native = mlflow.sklearn.load_model(uri)
    folder = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    local = mlflow.pyfunc.load_model(folder)
    return {
        "pyfunc": [int(v) for v in pyfunc.predict(rows)],
        "local": [int(v) for v in local.predict(rows)],
        "proba": [float(p) for p in native.predict_proba(rows)[:, 1]],
        "loader": pyfunc.metadata.flavors["python_function"]["loader_module"],
        "inputs": pyfunc.metadata.get_input_schema().input_names(),
        "files": sorted(os.listdir(folder)),
    }


def legacy() -> dict[str, Any]:
    """What a team's MLflow holds: nested runs, long histories, artifacts, two registered
    versions (skops and cloudpickle), aliases and a stage; the ids are printed."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlflow.set_experiment("legacy-fraud")
    with mlflow.start_run(run_name="training") as parent:
        mlflow.log_params({"C": 1.0, "penalty": "l2"})
        mlflow.set_tag("team", "risk")
        MlflowClient().log_batch(
            parent.info.run_id,
            metrics=[
                Metric("loss/train", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(1200)
            ],
        )
        mlflow.log_text("threshold: 0.5", "config/nested/settings.yaml")
        model = LogisticRegression(max_iter=5000).fit(X, y)
        # Fixed requirements: MLflow would otherwise infer them in a subprocess (~10 s each).
        needs = ["scikit-learn", "skops"]
        safe = mlflow.sklearn.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=needs
        )
        pickled = mlflow.sklearn.log_model(
            model,
            name="pickled",
            serialization_format="cloudpickle",
            input_example=X.iloc[:3],
            pip_requirements=needs,
        )
        with mlflow.start_run(run_name="fold-1", nested=True) as child:
            mlflow.log_metric("auc", 0.97)
    client = MlflowClient()
    first = mlflow.register_model(safe.model_uri, "legacy-lr")
    second = mlflow.register_model(pickled.model_uri, "legacy-lr")
    client.set_registered_model_alias("legacy-lr", "champion", first.version)
    client.set_registered_model_alias("legacy-lr", "challenger", second.version)
    client.transition_model_version_stage("legacy-lr", second.version, "Staging")
    history = client.get_metric_history(parent.info.run_id, "loss/train")
    return {
        "parent": parent.info.run_id,
        "child": child.info.run_id,
        "history": sorted((m.step, m.timestamp, m.value) for m in history),
        "proba": [float(p) for p in model.predict_proba(X.iloc[:10])[:, 1]],
    }


def hf_card() -> dict[str, Any]:
    """A model card's Markdown, loaded by huggingface_hub (the path is the "URI" here)."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(sys.argv[2])
    return {
        "library": card.data.library_name,
        "results": [(r.metric_type, r.metric_value) for r in card.data.eval_results or []],
    }


def _code(action: Any) -> str:
    try:
        action()
    except MlflowException as exc:
        return exc.error_code
    return "OK"


def auth() -> dict[str, Any]:
    """What a token's user may do: the MLFLOW_TRACKING_TOKEN of the environment."""
    client = MlflowClient()
    outcome: dict[str, Any] = {}
    outcome["search"] = _code(lambda: client.search_experiments())
    outcome["create_experiment"] = _code(lambda: client.create_experiment("auth-exp"))
    try:
        exp = client.get_experiment_by_name("auth-exp")
    except MlflowException:
        exp = None
    if exp is not None:
        run = client.create_run(exp.experiment_id)
        outcome["run_user"] = client.get_run(run.info.run_id).data.tags.get("mlflow.user")
        outcome["forge_user"] = _code(
            lambda: client.set_tag(run.info.run_id, "mlflow.user", "someone-else")
        )
        outcome["run_id"] = run.info.run_id
    other = os.environ.get("OTHER_RUN")
    if other:
        outcome["log_to_other"] = _code(lambda: client.log_metric(other, "x", 1.0))
    model = os.environ.get("MODEL")
    if model:
        outcome["champion"] = _code(
            lambda: client.set_registered_model_alias(model, "champion", "1")
        )
    return outcome


def main() -> None:
    """Run one scenario against the tracking URI given."""
    scenario, uri = sys.argv[1], sys.argv[2]
    if scenario != "hf_card":
        mlflow.set_tracking_uri(uri)
    scenarios = {
        "tracking": tracking,
        "models": models,
        "auth": auth,
        "shipyard_models": shipyard_models,
        "legacy": legacy,
        "hf_card": hf_card,
    }
    result = scenarios[scenario]()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
