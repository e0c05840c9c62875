"""Runs of clients that die (SIGKILL) do not stay RUNNING forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import shipyard
from tests.conftest import ServerProcess

CLIENT = """
import sys, time, shipyard
shipyard.set_uri(sys.argv[1])
run = shipyard.start_run(experiment="doomed")
shipyard.log_metric("loss", 1.0)
run.flush()
print(run.id, flush=True)
time.sleep(600)
"""


def _doomed_client(uri: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, uri], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id.startswith("run_"), run_id
    return proc, run_id


def test_a_killed_clients_run_is_expired_and_audited(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    proc, run_id = _doomed_client(store)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]
    shipyard.set_uri(store)
    try:
        with shipyard.start_run(experiment="alive") as alive:
            assert shipyard.get_run(run_id).status.value == "RUNNING"
            time.sleep(1.2)
            shipyard.log_metric("still", 1.0)
            alive.flush()  # a write is a sign of life
            backend = shipyard.sdk.context.current().get_backend()
            expired = backend.tracking.expire_stale_runs(1.0)
            assert expired == [run_id]
            assert shipyard.get_run(alive.id).status.value == "RUNNING"
        run = shipyard.get_run(run_id)
        assert run.status.value == "KILLED" and run.end_time is not None
        actions = [e.action for e in backend.governance.audit.events(obj=f"run:{run_id}")]
        assert actions[-1] == "run.expired"
    finally:
        shipyard.set_uri(None)


def test_the_server_sweeps_runs_of_dead_clients(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "home", {"SHIPYARD_RUN_TIMEOUT": "2"})
    try:
        proc, run_id = _doomed_client(srv.url)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        status = "RUNNING"
        while time.monotonic() < deadline and status == "RUNNING":
            time.sleep(0.5)
            status = httpx.get(f"{srv.url}/api/v1/runs/{run_id}").json()["status"]
        assert status == "KILLED"
    finally:
        srv.stop()
