"""Pipelines end to end on a real embedded store: caching, failures, resume, lineage."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.pipelines.lineage import lineage_tree
from shipyard.pipelines.models import PipelineStatus, StepStatus
from shipyard.sdk.pipelines import runner
from tests.conftest import TokenServer

FLOW = """
import os, time
from pathlib import Path
import numpy as np
import pandas as pd
import shipyard
from shipyard import pipeline, step
from sklearn.linear_model import LogisticRegression

STATE = Path(__file__).with_suffix(".state")

def helper(x):
    return x * {factor}

@step
def load(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({{"x": rng.normal(size=n), "cat": rng.choice(["a", "b"], n)}})
    df["y"] = (df.x > 0).astype(int)
    return df

@step
def features(df: pd.DataFrame) -> np.ndarray:
    return helper(df[["x"]].to_numpy())

@step(retries={retries}, retry_delay_seconds=[0.01, 0.02])
def train(X: np.ndarray, df: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    attempts = int(STATE.read_text()) if STATE.exists() else 0
    STATE.write_text(str(attempts + 1))
    if attempts < {fail_first}:
        raise RuntimeError("flaky training failure")
    shipyard.log_metric("train_rows", len(df))
    return LogisticRegression(C=C).fit(X, df.y)

@step
def evaluate(model: LogisticRegression, X: np.ndarray, df: pd.DataFrame) -> dict:
    acc = float(model.score(X, df.y))
    shipyard.log_metric("accuracy", acc)
    return {{"accuracy": acc}}

@pipeline
def training(n: int = 200, C: float = 1.0):
    df = load(n)
    X = features(df)
    model = train(X, df, C=C)
    return evaluate(model, X, df)
"""


def import_source(path: Path, source: str, name: str | None = None) -> Any:
    """Write ``source`` to ``path`` and import it as a module (pipelines find their code)."""
    name = name or f"flow_{uuid.uuid4().hex[:8]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_flow(tmp: Path, *, factor: int = 1, retries: int = 0, fail_first: int = 0) -> Any:
    source = FLOW.format(factor=factor, retries=retries, fail_first=fail_first)
    return import_source(tmp / "flows" / "flow.py", source)


@pytest.fixture(autouse=True, params=["sqlite", "postgres", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The embedded store, PostgreSQL, and a live server (team mode: the pipeline runs
    here, its records and outputs go to the server). Yields the folder of the blobs."""
    if request.param == "sqlite":
        shipyard.set_uri(str(tmp_path / "store"))
        yield tmp_path / "store" / "artifacts"
    elif request.param == "postgres":
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
        shipyard.set_uri(request.getfixturevalue("postgres_uri"))
        yield tmp_path / "blobs"
    else:
        server = TokenServer(tmp_path / "server-home")  # token auth, as its admin
        request.getfixturevalue("monkeypatch").setenv("SHIPYARD_TOKEN", server.token)
        shipyard.set_uri(server.url)
        try:
            yield tmp_path / "server-home" / "artifacts"
        finally:
            server.stop()
    shipyard.set_uri(None)


def statuses(run: Any) -> dict[str, str]:
    return {s.step: s.status.value for s in run.record.steps}


def test_run_then_fully_cached_rerun(tmp_path: Path) -> None:
    flow = load_flow(tmp_path)
    first = flow.training.run(n=200)
    assert first.status is PipelineStatus.COMPLETED
    assert set(statuses(first).values()) == {"COMPLETED"}
    assert first.load("evaluate")["accuracy"] > 0.9
    assert first.load("load").shape == (200, 3)
    second = flow.training.run(n=200)
    assert set(statuses(second).values()) == {"CACHED"}
    assert second.load("evaluate") == first.load("evaluate")
    third = flow.training.run(n=200, C=0.1)  # a param of one step: only it and what follows
    assert statuses(third) == {
        "load": "CACHED",
        "features": "CACHED",
        "train": "COMPLETED",
        "evaluate": "COMPLETED",
    }
    assert set(statuses(flow.training.run(n=200, cache=False)).values()) == {"COMPLETED"}


def test_metrics_logged_in_a_step_land_on_its_run(tmp_path: Path) -> None:
    run = load_flow(tmp_path).training.run(n=150)
    by_step = {s.step: s for s in run.record.steps}
    evaluated = shipyard.get_run(by_step["evaluate"].run_id)
    assert evaluated.metrics["accuracy"] > 0.9
    assert evaluated.status.value == "FINISHED" and evaluated.end_time is not None
    assert evaluated.parent_id == run.record.run_id
    assert shipyard.get_run(by_step["train"].run_id).metrics == {"train_rows": 150.0}


def test_changing_a_helper_reruns_its_callers_and_downstream_only(tmp_path: Path) -> None:
    load_flow(tmp_path, factor=1).training.run(n=120)
    changed = load_flow(tmp_path, factor=2).training.run(n=120)
    assert statuses(changed) == {
        "load": "CACHED",
        "features": "COMPLETED",
        "train": "COMPLETED",
        "evaluate": "COMPLETED",
    }


def test_retries_with_backoff_then_success(tmp_path: Path) -> None:
    run = load_flow(tmp_path, retries=2, fail_first=2).training.run(n=100)
    train = next(s for s in run.record.steps if s.step == "train")
    assert train.status is StepStatus.COMPLETED and train.attempts == 3


def test_failure_is_stored_downstream_skipped_and_resume_reuses_finished_steps(
    tmp_path: Path,
) -> None:
    flow = load_flow(tmp_path, fail_first=1)
    with pytest.raises(
        PipelineError, match=r"failed at step .train.* flaky training failure"
    ) as info:
        flow.training.run(n=100)
    failed = runner().store.get_pipeline_run(info.value.pipeline_run_id)  # type: ignore[attr-defined]
    assert failed.status is PipelineStatus.FAILED
    by_step = {s.step: s for s in failed.steps}
    assert by_step["train"].status is StepStatus.FAILED
    assert "RuntimeError: flaky training failure" in (by_step["train"].error or "")
    assert by_step["evaluate"].status is StepStatus.SKIPPED
    assert by_step["train"].outputs == ()
    resumed = runner().resume(flow.training, failed.id)  # the state file now lets train pass
    assert {s.step: s.status.value for s in resumed.steps} == {
        "load": "CACHED",
        "features": "CACHED",
        "train": "COMPLETED",
        "evaluate": "COMPLETED",
    }
    with pytest.raises(InvalidInputError, match="already completed"):
        runner().resume(flow.training, resumed.id)


def test_timeout_fails_the_step_with_a_clear_message() -> None:
    from shipyard import pipeline, step

    @step(timeout=0.3, retries=3)
    def slow() -> int:
        import time

        time.sleep(3)
        return 1

    @pipeline
    def hangs():
        return slow()

    with pytest.raises(PipelineError, match=r"timed out after 0\.3s"):
        hangs.run()
    # The record says what happened to the step: abandoned, not stopped, and what bounds it.
    record = runner().store.list_pipeline_runs("hangs", 1)[0]
    (step_run,) = runner().store.get_pipeline_run(record.id).steps
    assert "may still be running" in (step_run.error or "")
    assert "executor='process'" in (step_run.error or "")


def test_unserialisable_output_names_the_step_and_records_nothing() -> None:
    from shipyard import pipeline, step

    @step
    def odd() -> object:
        return object()

    @pipeline
    def weird():
        return odd()

    run = weird.run(raise_on_failure=False)
    step_run = run.record.steps[0]
    assert step_run.status is StepStatus.FAILED
    assert "step 'odd' output 'output'" in (step_run.error or "") and "materializer" in (
        step_run.error or ""
    )
    assert step_run.outputs == ()


def test_a_cache_entry_whose_blob_was_deleted_reruns(tmp_path: Path, store: Path) -> None:
    flow = load_flow(tmp_path)
    first = flow.training.run(n=80)
    digest = next(s for s in first.record.steps if s.step == "features").outputs[0].digest
    next(store.rglob(digest)).unlink()
    again = flow.training.run(n=80)
    assert statuses(again)["features"] == "COMPLETED"
    assert statuses(again)["load"] == "CACHED"


def test_lineage_walks_from_the_model_back_to_the_data_and_forward(tmp_path: Path) -> None:
    run = load_flow(tmp_path).training.run(n=90)
    by_step = {s.step: s for s in run.record.steps}
    model = f"artifact:{by_step['train'].outputs[0].digest}"
    store = runner().store
    up = lineage_tree(store, model, "upstream")

    def nodes(tree: Any) -> set[str]:
        return {tree.node} | {n for c in tree.children for n in nodes(c)}

    upstream = nodes(up)
    assert f"step_run:{by_step['train'].id}" in upstream
    assert f"artifact:{by_step['load'].outputs[0].digest}" in upstream
    assert f"code:{by_step['load'].code_hash}" in upstream
    assert f"pipeline_run:{run.id}" in upstream
    downstream = nodes(lineage_tree(store, model, "downstream"))
    assert f"step_run:{by_step['evaluate'].id}" in downstream


def test_user_materializers_take_precedence(tmp_path: Path) -> None:
    from shipyard import pipeline, register_materializer, step

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    class PointMaterializer:
        name = "test.point"
        version = "1"

        def handles(self, tp: Any, value: Any = None) -> bool:
            return tp is Point or isinstance(value, Point)

        def save(self, value: Point, path: Path) -> dict[str, Any]:
            path.write_text(str(value.x))
            return {}

        def load(self, path: Path, meta: dict[str, Any]) -> Point:
            return Point(int(path.read_text()))

    register_materializer(PointMaterializer())

    @step
    def make_point() -> Point:
        return Point(7)

    @pipeline
    def points():
        return make_point()

    run = points.run()
    assert run.load("make_point").x == 7
    assert run.record.steps[0].outputs[0].materializer == "test.point"


LOGGED = """
import logging
from shipyard import pipeline, step

@step
def chatty(n: int) -> int:
    print(f"loading {n} rows")
    logging.getLogger("etl").warning("3 rows had no amount")
    return n

@step
def broken(n: int) -> int:
    print("about to divide")
    return n // 0

@pipeline
def logged(n: int = 5):
    return broken(chatty(n))
"""


def test_what_a_step_prints_and_logs_is_kept_with_its_run(tmp_path: Path) -> None:
    module = import_source(tmp_path / "logged_flow.py", LOGGED, "logged_flow")
    with pytest.raises(PipelineError):
        module.logged.run(n=5)
    record = runner().store.list_pipeline_runs("logged", 1)[0]
    steps = {s.step: s for s in runner().store.get_pipeline_run(record.id).steps}
    tracking = runner().tracking
    chatty = tracking.read_artifact_bytes(steps["chatty"].run_id, "logs/step.log").decode()
    assert "loading 5 rows" in chatty
    assert "WARNING etl: 3 rows had no amount" in chatty
    broken = tracking.read_artifact_bytes(steps["broken"].run_id, "logs/step.log").decode()
    assert broken.strip() == "about to divide"  # its own output only; the traceback is kept apart
    assert "ZeroDivisionError" in (steps["broken"].error or "")
