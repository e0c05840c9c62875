"""Many writers at once: every point lands exactly once, on a server and on one SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.bootstrap import local_backend, rest_backend
from shipyard.core.settings import Settings
from tests.conftest import ServerProcess

WRITER = """
import sys, shipyard
shipyard.set_uri(sys.argv[1])
with shipyard.start_run(experiment="load", run_name=sys.argv[2]) as run:
    for i in range(int(sys.argv[3])):
        shipyard.log_metric("m", float(i), step=i)
print(run.id)
"""


def _spawn(uri: str, writers: int, points: int, tmp: Path) -> list[str]:
    script = tmp / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), uri, f"w{i}", str(points)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        ids.append(out.strip().splitlines()[-1])
    return ids


def _check(settings: Settings, ids: list[str], points: int) -> None:
    backend = rest_backend(settings) if settings.backend_kind == "http" else local_backend(settings)
    try:
        for run_id in ids:
            history = backend.tracking.get_metric_history(run_id, "m")
            assert sorted(m.step for m in history) == list(range(points))
    finally:
        backend.close()


@pytest.mark.slow
def test_eight_processes_log_to_one_server(server: ServerProcess, tmp_path: Path) -> None:
    ids = _spawn(server.url, 8, 5000, tmp_path)
    _check(Settings(uri=server.url), ids, 5000)


@pytest.mark.slow
def test_concurrent_writers_on_one_sqlite_file(tmp_path: Path) -> None:
    uri = str(tmp_path / "shared")
    ids = _spawn(uri, 4, 3000, tmp_path)
    _check(Settings(uri=uri), ids, 3000)
