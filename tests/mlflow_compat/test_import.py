"""`shipyard import mlflow` from an mlruns folder and from a running `mlflow server`, both
filled by the real MLflow client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from shipyard.bootstrap import local_backend
from shipyard.core.errors import PermissionDeniedError
from shipyard.core.settings import Settings
from tests.conftest import free_port
from tests.mlflow_compat.conftest import CLIENT, QUIET


def _client(python: Path, uri: str, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    done = subprocess.run(
        [str(python), str(CLIENT), "legacy", uri],
        env={**environ, **QUIET, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _import(store: Path, source: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "import", "mlflow", "--from", source, "--json"],
        env={**env, "SHIPYARD_URI": str(store)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _check_store(store: Path, seen: dict[str, Any], report: dict[str, Any]) -> None:
    assert report["runs"] == 2 and report["versions"] == 2 and report["logged_models"] == 2
    assert any("champion" in line for line in report["not_brought"])
    assert any("Staging" in line for line in report["not_brought"])
    backend = local_backend(Settings(uri=str(store)))
    try:
        parent = backend.tracking.get_run(report["run_ids"][seen["parent"]])
        child = backend.tracking.get_run(report["run_ids"][seen["child"]])
        assert child.parent_id == parent.id and parent.name == "training"
        assert parent.params == {"C": "1.0", "penalty": "l2"} and parent.tags["team"] == "risk"
        history = backend.tracking.get_metric_history(parent.id, "loss/train")
        # Every point MLflow holds (its log_model re-logs step 0 for the logged model).
        assert sorted([m.step, m.timestamp, m.value] for m in history) == seen["history"]
        assert len(history) >= 1200
        assert (
            backend.tracking.read_artifact_bytes(parent.id, "config/nested/settings.yaml")
            == b"threshold: 0.5"
        )
        X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
        _, version = backend.registry.load("models:/legacy-lr@challenger", trusted=True)
        assert version is not None and version.version == 2
        safe, _ = backend.registry.load("models:/legacy-lr/1")
        np.testing.assert_allclose(safe.predict_proba(X.iloc[:10])[:, 1], seen["proba"])
        # The cloudpickle version registered, and stays untrusted.
        with pytest.raises(PermissionDeniedError, match="pickle"):
            backend.registry.load("models:/legacy-lr/2")
        assert "champion" not in backend.registry.get_model("legacy-lr").aliases
    finally:
        backend.close()


def test_import_from_an_mlruns_folder_brings_everything_once(
    mlflow_python: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mlruns"
    seen = _client(mlflow_python, f"file://{folder}", MLFLOW_ALLOW_FILE_STORE="true")
    store = tmp_path / "store"
    report = _import(store, str(folder))
    _check_store(store, seen, report)
    again = _import(store, str(folder))
    assert (again["runs"], again["runs_skipped"]) == (0, 2)
    assert (again["versions"], again["versions_skipped"]) == (0, 2)


@pytest.fixture
def mlflow_server(mlflow_python: Path, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 over SQLite, serving its artifacts."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("wb")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [
            str(mlflow_python.parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination",
            str(tmp_path / "mlflow-artifacts"),
        ],
        env={**environ, **QUIET},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "mlflow-server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def test_import_from_a_running_mlflow_server(
    mlflow_python: Path, mlflow_server: str, tmp_path: Path
) -> None:
    seen = _client(mlflow_python, mlflow_server)
    store = tmp_path / "store"
    _check_store(store, seen, _import(store, mlflow_server))
