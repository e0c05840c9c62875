"""A crashed process loses at most the last flush interval; end_run makes every point durable."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.bootstrap import local_backend
from shipyard.core.ids import new_id
from shipyard.core.settings import Settings
from shipyard.tracking.models import Metric

CRASH = """
import os, sys, time, shipyard
shipyard.set_uri(sys.argv[1])
run = shipyard.start_run(experiment="crash")
print(run.id, flush=True)
for i in range(1000):
    shipyard.log_metric("before", float(i), step=i)
time.sleep(float(sys.argv[2]) * 3)   # several flush intervals pass
shipyard.log_metric("after", 1.0)     # logged inside the last interval
os._exit(1)                           # a crash: no atexit, no end_run
"""


def test_crash_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-c", CRASH, uri, "0.2"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SHIPYARD_FLUSH_INTERVAL": "0.2", "PATH": ""},
    )
    assert done.returncode == 1
    run_id = done.stdout.split()[0]
    backend = local_backend(Settings(uri=uri))
    try:
        history = backend.tracking.get_metric_history(run_id, "before")
        assert [m.step for m in history] == list(range(1000))
        assert backend.tracking.get_run(run_id).status.value == "RUNNING"
    finally:
        backend.close()


_values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_values, min_size=1, max_size=20), steps=st.integers(0, 2**63 - 1))
def test_metric_values_round_trip_through_the_store(
    tmp_path: Path, values: list[float], steps: int
) -> None:
    backend = local_backend(Settings(uri=str(tmp_path / "prop")))
    try:
        run = backend.tracking.create_run("prop")
        points = [Metric("v", v, steps, i) for i, v in enumerate(values)]
        backend.tracking.log_batch(run.id, points, batch_id=new_id("batch"))
        back = backend.tracking.get_metric_history(run.id, "v")
        assert len(back) == len(values)
        for sent, got in zip(values, [m.value for m in back], strict=True):
            assert (math.isnan(sent) and math.isnan(got)) or sent == got
    finally:
        backend.close()
