"""The process-pool executor gives the artifacts the local one gives, in parallel, and
contains steps that hang or kill their worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import shipyard
from shipyard.pipelines.loader import import_target
from shipyard.pipelines.models import StepStatus

RESOURCES = Path(__file__).parents[1] / "resources" / "pipelines" / "parallel.py"


@pytest.fixture(autouse=True)
def store(tmp_path: Path):
    shipyard.set_uri(str(tmp_path / "store"))
    yield
    shipyard.set_uri(None)


def pipeline(name: str):
    return import_target(f"{RESOURCES}:{name}")


def digests(run) -> dict[str, list[str]]:
    return {s.step: [o.digest for o in s.outputs] for s in run.record.steps}


@pytest.mark.slow
def test_processes_and_local_give_the_same_artifacts(tmp_path: Path) -> None:
    fan = pipeline("fan")
    local = fan.run(n=300, executor="local", cache=False)
    parallel = fan.run(n=300, executor="processes", cache=False)
    assert digests(local) == digests(parallel)
    by_step = {s.step: s for s in parallel.record.steps}
    assert shipyard.get_run(by_step["summarise"].run_id).metrics == {"rows": 300.0}


@pytest.mark.slow
def test_independent_steps_run_in_parallel() -> None:
    fan = pipeline("fan")
    fan.run(n=50, delay=0.0, executor="processes", cache=False)  # warm the worker pool's imports
    started = time.perf_counter()
    run = fan.run(n=50, delay=1.5, executor="processes", cache=False)
    elapsed = time.perf_counter() - started
    assert run.status.value == "COMPLETED"
    summaries = [s for s in run.record.steps if s.step.startswith("summarise")]
    assert len(summaries) == 2
    # the two 1.5 s steps overlap: well under the 3 s they would take one after the other
    assert summaries[0].started_at is not None and summaries[1].started_at is not None
    assert abs(summaries[0].started_at - summaries[1].started_at) < 1000
    assert elapsed < 20


@pytest.mark.slow
def test_a_hung_step_is_stopped_at_its_timeout() -> None:
    started = time.perf_counter()
    run = pipeline("hanging").run(executor="processes", raise_on_failure=False)
    assert time.perf_counter() - started < 30
    hang = next(s for s in run.record.steps if s.step == "hang")
    assert hang.status is StepStatus.FAILED and "timed out after 1s" in (hang.error or "")


@pytest.mark.slow
def test_a_step_that_kills_its_worker_fails_alone() -> None:
    run = pipeline("crashing").run(executor="processes", raise_on_failure=False)
    by_step = {s.step: s for s in run.record.steps}
    assert by_step["die"].status is StepStatus.FAILED
    assert "killed its worker process" in (by_step["die"].error or "")
    assert by_step["summarise"].status is StepStatus.COMPLETED
