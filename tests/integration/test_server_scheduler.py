"""``shipyard server --scheduler``: due schedules run inside the server process, beside a
standalone scheduler, each tick once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import shipyard
from shipyard.pipelines.schedules import TickStatus
from shipyard.sdk.scheduling import add_schedule, schedule_store
from tests.conftest import ServerProcess
from tests.integration.test_scheduler import TARGET, backdate


def test_the_server_runs_due_schedules_and_a_standalone_scheduler_takes_no_tick_twice(
    tmp_path: Path,
) -> None:
    allowed = str(Path(TARGET).parent)  # the tests' pipelines folder
    server = ServerProcess(
        tmp_path / "home",
        {"SHIPYARD_SCHEDULER_INTERVAL": "0.5", "SHIPYARD_SCHEDULE_TARGETS": allowed},
    )
    shipyard.set_uri(server.url)
    try:
        add_schedule("h", f"{TARGET}:hourly")
        backdate("h", 2)  # two due ticks: the older is missed, the newer runs
        # A standalone scheduler against the same server, at the same time.
        standalone = subprocess.run(
            [sys.executable, "-m", "shipyard", "scheduler", "--once"],
            env={**os.environ, "SHIPYARD_URI": server.url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert standalone.returncode == 0, standalone.stderr
        deadline = time.monotonic() + 60
        ticks = schedule_store().list_ticks("h", 10)
        while time.monotonic() < deadline and not any(
            t.status is TickStatus.COMPLETED for t in ticks
        ):
            time.sleep(0.5)
            ticks = schedule_store().list_ticks("h", 10)
        assert sorted(t.status.value for t in ticks) == ["COMPLETED", "MISSED"], ticks
        run_id = next(t.pipeline_run_id for t in ticks if t.status is TickStatus.COMPLETED)
        assert run_id is not None
        tracked = shipyard.search_runs("hourly", "tags.`shipyard.schedule` = 'h'").runs
        assert len(tracked) == 1
        time.sleep(1.5)  # more passes of the server's scheduler: nothing new is due
        assert len(schedule_store().list_ticks("h", 10)) == 2
    finally:
        shipyard.set_uri(None)
        server.stop()


def test_the_servers_scheduler_runs_only_the_targets_it_is_allowed(tmp_path: Path) -> None:
    """A member can add a schedule; the server imports only what its operator allows."""
    server = ServerProcess(tmp_path / "home", {"SHIPYARD_SCHEDULER_INTERVAL": "0.5"})
    shipyard.set_uri(server.url)
    try:
        add_schedule("planted", f"{TARGET}:hourly")
        backdate("planted", 1)
        deadline = time.monotonic() + 60
        ticks = schedule_store().list_ticks("planted", 10)
        while time.monotonic() < deadline and not ticks:
            time.sleep(0.5)
            ticks = schedule_store().list_ticks("planted", 10)
        assert [t.status for t in ticks] == [TickStatus.FAILED]
        assert ticks[0].pipeline_run_id is None
        assert "not among the targets this scheduler may run" in (ticks[0].note or "")
        assert shipyard.sdk.pipelines.runner().store.list_pipeline_runs(None, 10) == []
    finally:
        shipyard.set_uri(None)
        server.stop()
