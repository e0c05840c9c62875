"""The same job on Flower's deployment runtime: a SuperLink and one SuperNode per silo, each
its own process on 127.0.0.1, started through ``shipyard federated superlink|silo``; a silo
killed (SIGKILL) mid-training leaves the rounds to the others after the round timeout, and
nothing is left running."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flwr", reason="the federated extra runs in .venv-federated (make test)")

import shipyard.federated as fl
from shipyard.core.errors import NotFoundError
from shipyard.federated.deployment import FLOWER_LOG, run, wait_for
from shipyard.federated.synthetic import bank_silos

logging.getLogger("flwr").setLevel(logging.WARNING)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    kids = {int(p) for p in out.stdout.split()}
    for kid in list(kids):
        kids |= _children(kid)
    return kids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


@pytest.mark.timeout(600)
def test_superlink_and_supernodes_train_through_a_dropout_and_leave_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "store"
    monkeypatch.setenv("SHIPYARD_URI", str(home))
    from shipyard.sdk import context

    context.replace(context.current().settings.__class__())
    # FLWR_HOME: Flower keeps its runtime environments and state under it (~/.flwr else).
    env = {
        **os.environ,
        "SHIPYARD_URI": str(home),
        "NO_COLOR": "1",
        "FLWR_HOME": str(tmp_path / "flwr"),
    }
    link_port = _port()
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, *argv: str) -> None:
        with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "shipyard", "federated", *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    seen: set[int] = set()
    try:
        spawn(
            "superlink",
            "superlink",
            "--port",
            str(link_port),
            "--database",
            str(tmp_path / "link.db"),
        )
        wait_for(f"http://127.0.0.1:{link_port}/", timeout=120)
        for name, frame in bank_silos(9_000, 3, seed=3).items():
            path = tmp_path / f"{name}.parquet"
            frame.to_parquet(path)
            spawn(
                name,
                "silo",
                "--superlink",
                f"127.0.0.1:{link_port}",
                "--name",
                name,
                "--data",
                str(path),
                "--port",
                str(_port()),
            )
        job = fl.load_config({"label": "default", "rounds": 2, "min_silos": 2, "round_timeout": 45})
        outcome: dict[str, Any] = {}

        def submit() -> None:
            try:
                outcome["result"] = run(job, f"127.0.0.1:{link_port}", 3, register="credit")
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = exc

        worker = threading.Thread(target=submit)
        worker.start()
        backend = context.current().get_backend()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and worker.is_alive():
            try:
                runs = backend.tracking.search_runs("federated", max_results=50)
            except NotFoundError:  # the job has not opened its run yet
                runs = []
            if any(r.name == "round-1" for r in runs):
                break
            time.sleep(0.5)
        for pid in [procs["bank-c"].pid, *[p.pid for p in procs.values()]]:
            seen |= _children(pid) | {pid}
        # bank-c dies without a word as round 2 begins: the round waits round_timeout for
        # it, then aggregates the others.
        procs["bank-c"].send_signal(signal.SIGKILL)
        worker.join(timeout=400)
        if "error" in outcome:
            parents = [r for r in backend.tracking.search_runs("federated") if not r.parent_id]
            log = backend.tracking.read_artifact_bytes(parents[0].id, FLOWER_LOG).decode()
            pytest.fail(f"{outcome['error']}\n{log[-4000:]}")
        result = outcome["result"]
    finally:
        for proc in procs.values():
            seen |= _children(proc.pid) | {proc.pid}
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    rounds = result.report["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert set(rounds[0]["trained"]) == {"bank-a", "bank-b", "bank-c"}
    assert set(rounds[-1]["trained"]) == {"bank-a", "bank-b"}
    assert result.report["runtime"].startswith("flower deployment")
    assert result.model_version.version == 1
    card = result.model_version.card["model_parameters"]["federated"]
    assert set(card["silos"]) == {"bank-a", "bank-b", "bank-c"}
    print(json.dumps({"seconds_per_round": [r.get("seconds") for r in rounds]}))
    # Nothing Flower started outlives the test (its SuperExecs follow their parents out).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in seen):
        time.sleep(0.5)
    assert not [p for p in seen if _alive(p)], "processes left running"
