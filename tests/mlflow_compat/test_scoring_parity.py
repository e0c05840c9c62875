"""`/invocations` of `shipyard serve` answers what `mlflow models serve` answers.

Both servers score the same Shipyard version (MLflow loads the package with its own
loader, no shipyard installed): the same payloads must give the same status code, the
same predictions, and the same ``error_code`` for refusals. A model fitted on a DataFrame
(named columns) and one fitted on an array (MLflow's tensor signature) cover both rules
for rows sent without column names.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from tests.conftest import free_port
from tests.integration.test_model_server import ModelServer
from tests.mlflow_compat.conftest import QUIET

# One worker runs both tests, so the four servers start once.
pytestmark = pytest.mark.xdist_group("scoring")
COLUMNS = ["amount", "age", "score"]
ROW = [0.5, 1.0, 2.0]


def _json(doc: object) -> tuple[str, bytes]:
    return "application/json", json.dumps(doc).encode()


def _parquet(frame: pd.DataFrame) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return "application/vnd.apache.parquet", buffer.getvalue()


NAMED = {
    "split": _json({"dataframe_split": {"columns": COLUMNS, "data": [ROW, [-1, 0, 0]]}}),
    "split reordered": _json({"dataframe_split": {"columns": COLUMNS[::-1], "data": [ROW[::-1]]}}),
    "split without columns": _json({"dataframe_split": {"data": [ROW]}}),
    "records": _json({"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]}),
    "instances records": _json({"instances": [dict(zip(COLUMNS, ROW, strict=True))]}),
    "inputs records": _json({"inputs": [dict(zip(COLUMNS, ROW, strict=True))]}),
    "inputs columnar": _json({"inputs": {c: [v] for c, v in zip(COLUMNS, ROW, strict=True)}}),
    "instances lists": _json({"instances": [ROW]}),
    "inputs lists": _json({"inputs": [ROW]}),
    "extra column": _json({"dataframe_records": [{"amount": 0.5, "age": 1, "score": 2, "x": 1}]}),
    "missing column": _json({"dataframe_records": [{"amount": 0.5, "age": 1.0}]}),
    "numeric strings": _json({"dataframe_records": [{"amount": "0.5", "age": "1", "score": "2"}]}),
    "integers": _json({"dataframe_records": [{"amount": 1, "age": 1, "score": 2}]}),
    "null": _json({"dataframe_records": [{"amount": None, "age": 1.0, "score": 2.0}]}),
    "two keys": _json({"dataframe_records": [], "instances": []}),
    "no key": _json({"foo": 1}),
    "a list": _json([1, 2]),
    "params": _json({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}, "params": {"x": 1}}),
    "bad json": ("application/json", b"{nope"),
    "empty": ("application/json", b""),
    "csv": ("text/csv", b"amount,age,score\n0.5,1,2\n"),
    "csv with pandas index": ("text/csv", pd.DataFrame([ROW], columns=COLUMNS).to_csv().encode()),
    "csv not numbers": ("text/csv", b"amount,age\nx,y\n"),
    "parquet": _parquet(pd.DataFrame([ROW, [-1, 0, 0]], columns=COLUMNS)),
    "text/plain": ("text/plain", b"hello"),
}
TENSOR = {
    "instances lists": _json({"instances": [ROW, [-1, 0, 0]]}),
    "inputs lists": _json({"inputs": [ROW]}),
    "split without columns": _json({"dataframe_split": {"data": [ROW]}}),
}


class MlflowServe:
    """`mlflow models serve` on a package folder (the MLflow environment, no shipyard)."""

    def __init__(self, python: Path, folder: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        environ["PATH"] = f"{python.parent}{os.pathsep}{environ.get('PATH', '')}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                *(str(python.parent / "mlflow"), "models", "serve", "-m", str(folder)),
                *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(self.port)),
            ],
            env={**environ, **QUIET},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("mlflow models serve did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=30)
        self.log.close()


def _package(store: Path, name: str, model: object, example: object, out: Path) -> None:
    shipyard.set_uri(str(store))
    try:
        version = shipyard.register_model(name, model, example)
        registry = shipyard.model_registry()
        for file in version.files:
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            registry.tracking.download_artifact(
                version.run_id, f"{version.artifact_path}/{file}", out / file
            )
    finally:
        shipyard.set_uri(None)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, mlflow_python: Path
) -> Iterator[dict[str, tuple[str, str]]]:
    """For each model, the URLs of MLflow's scoring server and Shipyard's, side by side."""
    with pytest.MonkeyPatch.context() as env:
        # A module fixture runs before the per-test clean environment: clean it here.
        for key in [k for k in os.environ if k.startswith("SHIPYARD_")]:
            if not key.startswith("SHIPYARD_TEST_"):
                env.delenv(key)
        yield from _servers(tmp_path_factory, mlflow_python)


def _servers(
    tmp_path_factory: pytest.TempPathFactory, mlflow_python: Path
) -> Iterator[dict[str, tuple[str, str]]]:
    home = tmp_path_factory.mktemp("scoring")
    store = home / "store"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=COLUMNS)
    labels = (frame["amount"] > 0).astype(int)
    running: list[MlflowServe | ModelServer] = []
    urls = {}
    try:
        for name, X in (("named", frame), ("tensor", frame.to_numpy())):
            _package(store, name, LogisticRegression().fit(X, labels), X[:3], home / name)
        # One after the other: four servers importing at once overran their start deadlines
        # on a loaded 2-core machine.
        for name in ("named", "tensor"):
            theirs = MlflowServe(mlflow_python, home / name, home / f"mlflow-{name}.log")
            running.append(theirs)
            ours = ModelServer(store, f"models:/{name}/1")
            running.append(ours)
            urls[name] = (theirs.url, ours.url)
        yield urls
    finally:
        for proc in running:
            proc.stop()


def _compare(mlflow_url: str, shipyard_url: str, cases: dict[str, tuple[str, bytes]]) -> list[str]:
    differences = []
    for case, (media, body) in cases.items():
        headers = {"Content-Type": media}
        theirs = httpx.post(f"{mlflow_url}/invocations", content=body, headers=headers, timeout=30)
        ours = httpx.post(f"{shipyard_url}/invocations", content=body, headers=headers, timeout=30)
        if theirs.status_code != ours.status_code:
            differences.append(f"{case}: MLflow {theirs.status_code}, Shipyard {ours.status_code}")
        elif theirs.status_code == 200 and theirs.json() != ours.json():
            differences.append(f"{case}: MLflow {theirs.json()}, Shipyard {ours.json()}")
        elif theirs.status_code == 400:
            codes = theirs.json().get("error_code"), ours.json().get("error_code")
            if codes[0] != codes[1]:
                differences.append(f"{case}: MLflow {codes[0]}, Shipyard {codes[1]}")
    return differences


def test_named_columns_answered_as_mlflow_answers(servers: dict[str, tuple[str, str]]) -> None:
    assert _compare(*servers["named"], NAMED) == []


def test_array_models_take_rows_without_names_as_mlflow_does(
    servers: dict[str, tuple[str, str]],
) -> None:
    assert _compare(*servers["tensor"], TENSOR) == []
