"""``executor="ray"`` on an existing Ray cluster: ``ray start --head`` on 127.0.0.1 and one
more node, reached through RAY_ADDRESS, with the store behind a Shipyard server so every
worker reads and writes artifacts through the blob API, never a path on the driver.

Each ``ray start --block`` process is stopped by its PID; it takes down what it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.loader import import_target
from tests.conftest import ServerProcess, free_port

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.xdist_group("ray")]

RESOURCES = Path(__file__).parents[1] / "resources" / "pipelines" / "parallel.py"
RAY = Path(sys.executable).with_name("ray")


# A loopback-only test cluster: Ray's token authentication (on by default since 2.5x)
# is switched off for it, in the nodes and in this driver alike.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _node(args: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    log = tmp / f"ray-{len(list(tmp.glob('ray-*')))}.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(RAY), "start", "--block", "--num-cpus", "1", "--disable-usage-stats", *args],
            env={**os.environ, **RAY_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    # Ray's sockets live under its temp dir, and a Unix socket path has at most 107 bytes:
    # pytest's (worker-specific) tmp paths are too deep, so a short folder under /tmp.
    tmp = Path(tempfile.mkdtemp(prefix="sy-ray-", dir="/tmp"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = _node(
        [
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--include-dashboard",
            "false",
            "--temp-dir",
            str(tmp / "session"),
        ],
        tmp,
    )
    nodes = [head]
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(
            [str(RAY), "status", "--address", address],
            capture_output=True,
            env={**os.environ, **RAY_ENV},
        ).returncode:
            assert head.poll() is None, (tmp / "ray-0.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(1)
        nodes.append(_node(["--address", address, "--node-ip-address", "127.0.0.1"], tmp))
        yield address
    finally:
        for proc in reversed(nodes):
            proc.terminate()  # --block: ray start stops what it started
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def test_steps_run_on_the_cluster_and_their_artifacts_travel_through_the_server(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)
    server = ServerProcess(tmp_path / "server-home")
    shipyard.set_uri(server.url)
    try:
        deadline = time.monotonic() + 60
        ray.init(address=cluster, log_to_driver=False, configure_logging=False)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the second node never joined"
            time.sleep(1)
        spread = import_target(f"{RESOURCES}:spread")
        run = spread.run(delay=2.0, executor="ray")
        assert run.status.value == "COMPLETED"
        # Four one-CPU steps of 2 s on two one-CPU nodes: both nodes took some.
        assert len(run.load("nodes")) == 2
        fan = import_target(f"{RESOURCES}:fan")
        assert list(fan.run(n=50, executor="ray").load("stack")) == list(
            fan.run(n=50, executor="local").load("stack")
        )
        # Everything the workers wrote is in the server's blob store.
        blobs = list((tmp_path / "server-home" / "artifacts" / "sha256").rglob("*"))
        assert any(p.is_file() for p in blobs)
    finally:
        ray.shutdown()
        shipyard.set_uri(None)
        server.stop()


def test_a_remote_cluster_is_refused_a_store_on_this_machine_s_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.core.settings import Settings
    from shipyard.executors.ray_tasks import RayExecutor
    from shipyard.sdk.pipelines import worker_runner

    monkeypatch.setenv("RAY_ADDRESS", "ray-head.bank.internal:6379")
    with pytest.raises(InvalidInputError, match="workers cannot see"):
        RayExecutor(Settings(uri=str(tmp_path / "store")), worker_runner)
