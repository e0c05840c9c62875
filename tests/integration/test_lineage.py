"""Lineage: OpenLineage events out of pipelines, events in over HTTP, and model lineage."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.core.errors import PipelineError
from shipyard.sdk.pipelines import runner
from tests.conftest import ServerProcess
from tests.e2e.test_cli import cli
from tests.resources.pipelines.training import broken, training


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SHIPYARD_OPENLINEAGE_FILE", str(tmp_path / "lineage.jsonl"))
    shipyard.set_uri(str(tmp_path / "store"))
    yield tmp_path
    shipyard.set_uri(None)


def _events(home: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (home / "lineage.jsonl").read_text().splitlines()]


def test_pipeline_and_step_runs_emit_openlineage_events(home: Path) -> None:
    run = training.run(rows=100)
    events = _events(home)
    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])  # type: ignore[index]
        assert event["schemaURL"].endswith("2-0-2/OpenLineage.json#/$defs/RunEvent")  # type: ignore[union-attr]
        uuid.UUID(event["run"]["runId"])  # type: ignore[index]
        assert event["job"]["namespace"] == "shipyard://default"  # type: ignore[index]
    assert by_job == {
        "training": ["START", "COMPLETE"],
        "training.make": ["START", "COMPLETE"],
        "training.train": ["START", "COMPLETE"],
    }
    pipeline_uuid = next(e["run"]["runId"] for e in events if e["job"]["name"] == "training")  # type: ignore[index]
    train_done = next(
        e for e in events if e["job"]["name"] == "training.train" and e["eventType"] == "COMPLETE"
    )
    facets = train_done["run"]["facets"]  # type: ignore[index]
    assert facets["parent"]["run"]["runId"] == pipeline_uuid
    assert facets["shipyard_run"]["pipeline_run_id"] == run.id
    make_done = next(
        e for e in events if e["job"]["name"] == "training.make" and e["eventType"] == "COMPLETE"
    )
    # The data set make wrote is the one train read.
    assert make_done["outputs"][0]["name"] == train_done["inputs"][0]["name"]  # type: ignore[index]

    training.run(rows=100)  # cached: still one START and one COMPLETE per step
    assert [e["eventType"] for e in _events(home)[6:]] == ["START"] + ["START", "COMPLETE"] * 2 + [
        "COMPLETE"
    ]


def test_a_failing_step_emits_fail_with_its_error(home: Path) -> None:
    with pytest.raises(PipelineError, match="no luck"):
        broken.run(rows=20)
    events = _events(home)
    failed = [e for e in events if e["eventType"] == "FAIL"]
    assert {e["job"]["name"] for e in failed} == {"broken.explode", "broken"}  # type: ignore[index]
    step = next(e for e in failed if e["job"]["name"] == "broken.explode")  # type: ignore[index]
    assert "no luck" in step["run"]["facets"]["errorMessage"]["message"]  # type: ignore[index]


def test_model_lineage_reaches_the_pipeline(home: Path) -> None:
    run = training.run(rows=120)
    train_step = next(s for s in run.record.steps if s.step == "train")
    uri = runner().load_output(train_step.outputs[0])
    mv = shipyard.register_model("clf", uri)
    graph = json.loads(
        cli("lineage", "models:/clf/1", "--json", env={"SHIPYARD_URI": str(home / "store")}).stdout
    )
    ids = {n["id"] for n in graph["nodes"]}
    assert f"run:{mv.run_id}" in ids
    assert f"step_run:{train_step.id}" in ids and f"pipeline_run:{run.id}" in ids
    assert any(i.startswith("artifact:") for i in ids)  # the data the step read
    assert any(i.startswith("code:") for i in ids)
    tree = cli("lineage", "models:/clf/1", env={"SHIPYARD_URI": str(home / "store")}).stdout
    assert "upstream" in tree and "trained_in" in tree


def test_server_accepts_openlineage_events_from_other_tools(
    server: ServerProcess, tmp_path: Path
) -> None:
    run_id = str(uuid.uuid4())
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-29T10:00:00Z",
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "airflow", "name": "etl.load_txns"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "bank.raw.transactions"}],
        "outputs": [{"namespace": "s3://lake", "name": "features/txns.parquet"}],
    }
    done = httpx.post(f"{server.url}/api/v1/lineage", json=event)
    assert done.status_code == 201 and done.json()["edges"] == 3
    # The Python client's compression="gzip", and the two other kinds of spec 2-0-x.
    job_event = {
        **{k: event[k] for k in ("eventTime", "producer", "inputs", "outputs")},
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "dbt", "name": "marts.fraud_features"},
    }
    zipped = httpx.post(
        f"{server.url}/api/v1/lineage",
        content=gzip.compress(json.dumps(job_event).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 201, zipped.text
    assert zipped.json()["kind"] == "job" and zipped.json()["edges"] == 2
    dataset_event = {
        **{k: event[k] for k in ("eventTime", "producer")},
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://lake", "name": "features/txns.parquet"},
    }
    done = httpx.post(f"{server.url}/api/v1/lineage", json=dataset_event)
    assert done.status_code == 201 and done.json()["kind"] == "dataset"
    for bad in (
        {**event, "eventType": "DONE"},
        {**event, "run": {"runId": "nope"}},
        {k: v for k, v in event.items() if k != "job"},
        {k: v for k, v in event.items() if k != "schemaURL"},
    ):
        answer = httpx.post(f"{server.url}/api/v1/lineage", json=bad)
        assert answer.status_code == 400 and "not an OpenLineage event" in answer.json()["error"]
    bomb = httpx.post(
        f"{server.url}/api/v1/lineage",
        content=gzip.compress(b" " * 50_000_000),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert bomb.status_code == 400 and "inflates beyond" in bomb.json()["error"]
    garbage = httpx.post(
        f"{server.url}/api/v1/lineage",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert garbage.status_code == 400
    # The events became lineage edges in the server's store.
    shown = cli(
        "lineage",
        run_id,  # the runId as the other tool sent it: no prefix to know
        "--json",
        env={"SHIPYARD_URI": str(tmp_path / "server-home")},
    )
    assert shown.returncode == 0, shown.stderr
    assert "dataset:postgres://db:5432/bank.raw.transactions" in shown.stdout
    assert "dataset:s3://lake/features/txns.parquet" in shown.stdout
