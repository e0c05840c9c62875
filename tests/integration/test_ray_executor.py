"""The Ray executor against a private local Ray (num_cpus=2, 127.0.0.1, no usage stats)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.pipelines.loader import import_target
from shipyard.pipelines.models import StepStatus

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.xdist_group("ray")]

RESOURCES = Path(__file__).parents[1] / "resources" / "pipelines" / "parallel.py"


@pytest.fixture(autouse=True)
def store(tmp_path: Path, local_ray: None) -> Iterator[None]:
    shipyard.set_uri(str(tmp_path / "store"))
    yield
    shipyard.set_uri(None)


def test_ray_gives_the_artifacts_local_gives() -> None:
    fan = import_target(f"{RESOURCES}:fan")
    local = fan.run(n=200, executor="local", cache=False)
    on_ray = fan.run(n=200, executor="ray", cache=False)
    digests = lambda run: {s.step: [o.digest for o in s.outputs] for s in run.record.steps}  # noqa: E731
    assert digests(local) == digests(on_ray)
    summarise = next(s for s in on_ray.record.steps if s.step == "summarise")
    assert shipyard.get_run(summarise.run_id).metrics == {"rows": 200.0}


def test_ray_stops_a_hung_step_at_its_timeout() -> None:
    run = import_target(f"{RESOURCES}:hanging").run(executor="ray", raise_on_failure=False)
    hang = next(s for s in run.record.steps if s.step == "hang")
    assert hang.status is StepStatus.FAILED and "timed out after 1s" in (hang.error or "")


def test_ray_contains_a_step_that_kills_its_worker() -> None:
    run = import_target(f"{RESOURCES}:crashing").run(executor="ray", raise_on_failure=False)
    by_step = {s.step: s for s in run.record.steps}
    assert by_step["die"].status is StepStatus.FAILED
    assert by_step["summarise"].status is StepStatus.COMPLETED
