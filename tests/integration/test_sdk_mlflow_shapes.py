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
