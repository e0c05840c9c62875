"""What MLflow code expects of search_runs: a paged sequence, and MLflow's DataFrame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import shipyard
from shipyard.core.errors import InvalidInputError


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    shipyard.set_uri(str(tmp_path / "store"))
    ids = []
    for i in range(5):
        with shipyard.start_run(experiment="fraud", run_name=f"r{i}", tags={"team": "risk"}) as run:
            shipyard.log_params({"model": "gbm" if i % 2 else "lr", "depth": i})
            shipyard.log_metrics({"auc": 0.8 + i / 100})
        ids.append(run.id)
    yield ids
    shipyard.set_uri(None)


def test_a_page_is_a_sequence_with_a_token_like_mlflows_paged_list(runs: list[str]) -> None:
    page = shipyard.search_runs("fraud", order_by=["metrics.auc DESC"], max_results=2)
    assert len(page) == 2
    assert [r.name for r in page] == ["r4", "r3"]
    assert page[0].name == "r4" and [r.name for r in page[-1:]] == ["r3"]
    rest = shipyard.search_runs("fraud", order_by=["metrics.auc DESC"], page_token=page.token)
    assert [r.name for r in rest] == ["r2", "r1", "r0"]
    assert rest.token is None


def test_pandas_output_has_mlflows_columns_across_pages(runs: list[str]) -> None:
    frame = shipyard.search_runs(
        "fraud", "params.model = 'gbm'", ["metrics.auc ASC"], output_format="pandas"
    )
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert {
        "metrics.auc",
        "params.model",
        "params.depth",
        "tags.team",
        "tags.mlflow.runName",
    } <= set(frame.columns)
    assert frame["tags.mlflow.runName"].tolist() == ["r1", "r3"]
    assert frame["metrics.auc"].tolist() == pytest.approx([0.81, 0.83])
    assert frame["params.depth"].tolist() == ["1", "3"]  # params are strings, as in MLflow
    assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]" or isinstance(
        frame["start_time"][0], pd.Timestamp
    )
    assert set(frame["run_id"]) == {runs[1], runs[3]}
    # max_results bounds the rows even when the runs span pages.
    assert len(shipyard.search_runs("fraud", output_format="pandas", max_results=3)) == 3
    empty = shipyard.search_runs("fraud", "params.model = 'svm'", output_format="pandas")
    assert empty.empty and list(empty.columns)[:2] == ["run_id", "experiment_id"]
    with pytest.raises(InvalidInputError, match="output_format"):
        shipyard.search_runs("fraud", output_format="arrow")  # type: ignore[call-overload]


def test_runs_answer_to_mlflows_info_and_data(runs: list[str]) -> None:
    with shipyard.start_run(experiment="fraud", run_name="shape") as active:
        shipyard.log_metric("auc", 0.9)
        shipyard.log_param("model", "gbm")
        run_id = active.info.run_id
    assert run_id == active.id
    run = shipyard.get_run(run_id)
    assert (run.info.run_id, run.info.run_name, run.info.status) == (run_id, "shape", "FINISHED")
    assert run.info.lifecycle_stage == "active" and run.info.user_id
    assert run.data.metrics == {"auc": 0.9} and run.data.params == {"model": "gbm"}
    assert run.data.tags["shipyard.user"] == run.info.user_id


def test_mlflows_other_fluent_functions(runs: list[str], tmp_path: Path) -> None:
    assert shipyard.get_experiment_by_name("nope") is None
    new_id = shipyard.create_experiment("credit", tags={"team": "risk"})
    assert isinstance(new_id, str) and shipyard.get_experiment(new_id).name == "credit"
    with pytest.raises(InvalidInputError, match="artifact_location"):
        shipyard.create_experiment("elsewhere", artifact_location="s3://bucket/x")
    found = shipyard.search_experiments(filter_string="tags.team = 'risk'")
    assert [e.name for e in found] == ["credit"] and found[0].experiment_id == new_id
    assert [e.name for e in shipyard.search_experiments(order_by=["name ASC"])] == [
        "credit",
        "fraud",
    ]
    exp = shipyard.set_experiment("credit")
    assert exp.lifecycle_stage == "active"
    folder = tmp_path / "outputs"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "roc.txt").write_text("auc")
    (folder / "summary.json").write_text("{}")
    with shipyard.start_run() as run:  # goes to the experiment set above, as in MLflow
        shipyard.log_artifacts(folder, "report")
    assert shipyard.get_run(run.id).experiment_id == new_id
    last = shipyard.last_active_run()
    assert last is not None and last.info.run_id == run.id
    names = {
        a.name for a in shipyard.sdk.context.current().get_backend().tracking.list_artifacts(run.id)
    }
    assert names == {"report/plots/roc.txt", "report/summary.json"}
    assert shipyard.get_tracking_uri() == shipyard.get_uri()
    shipyard.delete_run(run.id)
    assert len(shipyard.search_runs("credit")) == 0
