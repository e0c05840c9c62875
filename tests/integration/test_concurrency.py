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


CLIENT = """
import sys, threading
from shipyard.bootstrap import rest_backend
from shipyard.core.settings import Settings
from shipyard.tracking.models import Metric

uri, proc, threads, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
backend = rest_backend(Settings(uri=uri))
ids, errors = [], []

def write(n):
    try:
        exp = backend.tracking.get_or_create_experiment("race")  # everyone at once
        run = backend.tracking.create_run(exp.id, name=f"{proc}-{n}")
        for b in range(batches):
            points = [Metric("m", float(i), b * 100 + i, 1) for i in range(100)]
            backend.tracking.log_batch(run.id, points, params={"batch": 0} if b == 0 else None)
        backend.tracking.end_run(run.id)
        ids.append(run.id)
    except Exception as exc:
        errors.append(repr(exc))

pool = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
for t in pool: t.start()
for t in pool: t.join()
print("\\n".join(errors), file=sys.stderr)
print(" ".join(ids))
sys.exit(1 if errors else 0)
"""


def test_thirty_two_writers_to_one_server_land_exactly(
    server: ServerProcess, tmp_path: Path
) -> None:
    """4 processes x 8 threads: one experiment however many create it at once, and every
    point of every run exactly once."""
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    batches = 10
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), server.url, f"p{p}", "8", str(batches)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(4)
    ]
    ids: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        ids += out.split()
    assert len(ids) == 32
    backend = rest_backend(Settings(uri=server.url))
    try:
        experiments = [e for e in backend.tracking.list_experiments() if e.name == "race"]
        assert len(experiments) == 1
        runs = backend.tracking.search_runs([experiments[0].id], max_results=100)
        assert sorted(r.id for r in runs) == sorted(ids)
        for run_id in ids:
            history = backend.tracking.get_metric_history(run_id, "m")
            assert sorted(m.step for m in history) == list(range(batches * 100))
            assert backend.tracking.get_run(run_id).status.value == "FINISHED"
    finally:
        backend.close()


def test_same_name_and_version_races_through_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    """32 clients create one model name (one wins, the rest get a conflict, none a 5xx) and
    register versions of another at once (numbered 1..32, no gap, no repeat)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from sklearn.linear_model import LogisticRegression

    import shipyard
    from tests.integration.test_gates import FAIR, make_data

    shipyard.set_uri(server.url)
    try:
        data = make_data(300, 2)
        with shipyard.start_run(experiment="race") as run:
            model = LogisticRegression().fit(data[FAIR], data["label"])
            shipyard.log_model(model, input_example=data[FAIR][:5])
    finally:
        shipyard.set_uri(None)

    def create(_: int) -> int:
        body = {"name": "same-name", "description": "race"}
        return httpx.post(f"{server.url}/api/v1/models", json=body, timeout=60).status_code

    def register(_: int) -> int:
        body = {"run_id": run.id, "artifact_path": "model"}
        url = f"{server.url}/api/v1/models/numbered/versions"
        answer = httpx.post(url, json=body, timeout=120)
        assert answer.status_code in (200, 201), answer.text
        return int(answer.json()["version"])

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(create, range(32)))
        versions = list(pool.map(register, range(32)))
    assert sum(c in (200, 201) for c in codes) == 1 and codes.count(409) == 31, codes
    assert sorted(versions) == list(range(1, 33))
    listed = httpx.get(f"{server.url}/api/v1/models/numbered/versions", timeout=60).json()
    assert sorted(v["version"] for v in listed["versions"]) == list(range(1, 33))
    audit = httpx.get(
        f"{server.url}/api/v1/audit/events", params={"action": "model.registered"}, timeout=60
    ).json()["events"]
    assert sorted(e["object"] for e in audit) == sorted(
        f"models:/numbered/{v}" for v in range(1, 33)
    )
