"""A real `shipyard serve` process on 127.0.0.1: protocols, bad input, metrics, the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import shipyard
from tests.conftest import ServerProcess, free_port
from tests.e2e.test_cli import cli

COLS = [f"f{i}" for i in range(5)]


class ModelServer:
    """`shipyard serve` as a subprocess, stopped by its PID."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        full.update({"SHIPYARD_URI": str(home), **(env or {})})
        self.log = (home / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "serve", *args, "--port", str(self.port)],
            env=full,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120  # a loaded CI machine imports slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text())
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("model server did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def home(tmp_path: Path, seed: int) -> Iterator[Path]:
    """A store with fraud v1 (logistic, champion) and v2 (boosting)."""
    store = tmp_path / "store"
    shipyard.set_uri(str(store))
    X, y = make_classification(300, 5, random_state=seed)
    frame = pd.DataFrame(X, columns=COLS)
    shipyard.register_model("fraud", LogisticRegression().fit(frame, y), frame[:5])
    shipyard.register_model(
        "fraud", HistGradientBoostingClassifier(max_iter=10).fit(frame, y), frame[:5]
    )
    shipyard.set_alias("fraud", "champion", 1, reason="test setup")
    shipyard.set_uri(None)
    return store


@pytest.fixture
def served(home: Path) -> Iterator[ModelServer]:
    srv = ModelServer(home, "models:/fraud@champion", "--poll-interval", "0.5", "--max-rows", "50")
    yield srv
    srv.stop()


ROW = [0.1, -0.2, 0.3, 0.0, 1.5]


def named_rows(rows: list[list[float]]) -> dict[str, object]:
    """A scoring request with named columns (the model was fitted on a DataFrame)."""
    return {"dataframe_split": {"columns": COLS, "data": rows}}


def test_mlflow_and_oip_requests_are_answered(served: ModelServer) -> None:
    url = served.url
    split = {"dataframe_split": {"columns": COLS, "data": [ROW, ROW]}}
    r = httpx.post(f"{url}/invocations", json=split, headers={"x-request-id": "req-1"})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2
    assert r.headers["x-request-id"] == "req-1"
    assert r.headers["x-model-version"] == "fraud/1"
    records = {"dataframe_records": [dict(zip(COLS, ROW, strict=True))]}
    assert httpx.post(f"{url}/invocations", json=records).json()["predictions"] in ([0], [1])
    assert httpx.post(f"{url}/invocations", json=named_rows([ROW])).status_code == 200
    columnar = {"inputs": {c: [v] for c, v in zip(COLS, ROW, strict=True)}}
    assert httpx.post(f"{url}/invocations", json=columnar).status_code == 200
    # Columns the signature does not name are dropped, as MLflow's scoring server does.
    extra = {"dataframe_split": {"columns": [*COLS, "zz"], "data": [[*ROW, 1]]}}
    assert httpx.post(f"{url}/invocations", json=extra).status_code == 200
    csv = ",".join(COLS) + "\n" + ",".join(map(str, ROW)) + "\n"
    r = httpx.post(f"{url}/invocations", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text

    infer = {
        "id": "abc",
        "inputs": [
            {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
            for c, v in zip(COLS, ROW, strict=True)
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    body = httpx.post(f"{url}/v2/models/fraud/infer", json=infer).json()
    assert body["id"] == "abc" and body["model_version"] == "1"
    assert body["outputs"][0]["name"] == "predict_proba" and body["outputs"][0]["shape"] == [1, 2]
    tensor = {"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP32", "data": ROW + ROW}]}
    assert httpx.post(f"{url}/v2/models/fraud/infer", json=tensor).status_code == 200
    meta = httpx.get(f"{url}/v2/models/fraud").json()
    assert [i["name"] for i in meta["inputs"]] == COLS
    # Declared output types match what infer returns (integer labels here).
    predicted = httpx.post(f"{url}/v2/models/fraud/infer", json=tensor).json()["outputs"][0]
    assert meta["outputs"][0] == {"name": "predict", "datatype": "INT64", "shape": [-1]}
    assert predicted["name"] == "predict" and predicted["datatype"] == "INT64"
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/models/fraud/versions/1/ready").json()["ready"] is True
    assert httpx.get(f"{url}/v2/models/fraud/versions/9/ready").status_code == 404
    unknown = httpx.get(f"{url}/v2/nothing/here")
    assert unknown.status_code == 404 and "no such route" in unknown.json()["error"]
    # Declared probability type is what infer returns (float32 from onnxruntime).
    proba = httpx.post(f"{url}/v2/models/fraud/infer", json=infer).json()["outputs"][0]
    declared = {o["name"]: o["datatype"] for o in meta["outputs"]}
    assert declared["predict_proba"] == proba["datatype"]


def _binary_request(tensors: dict[str, np.ndarray], datatype: str) -> tuple[bytes, dict[str, str]]:
    """An infer request in the binary tensor extension, as tritonclient sends it."""
    header = {
        "inputs": [
            {
                "name": name,
                "shape": list(values.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": values.nbytes},
            }
            for name, values in tensors.items()
        ],
        "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    body = head + b"".join(v.tobytes() for v in tensors.values())
    return body, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }


def test_oip_binary_tensors_score_like_json(served: ModelServer) -> None:
    url = f"{served.url}/v2/models/fraud/infer"
    rows = np.array([ROW, [1.0, 2.0, -1.0, 0.5, 0.0]])
    as_json = {
        "inputs": [
            {"name": "x", "shape": [2, 5], "datatype": "FP64", "data": rows.ravel().tolist()}
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    expected = httpx.post(url, json=as_json).json()["outputs"][0]["data"]
    per_column, headers = _binary_request(
        {c: rows[:, j].copy() for j, c in enumerate(COLS)}, "FP64"
    )
    got = httpx.post(url, content=per_column, headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["outputs"][0]["data"] == pytest.approx(expected)
    single, headers = _binary_request({"x": rows.astype("float32")}, "FP32")
    got = httpx.post(url, content=single, headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["outputs"][0]["data"] == pytest.approx(expected, abs=1e-5)
    cut = httpx.post(url, content=single[:-4], headers=headers)
    assert cut.status_code == 400 and "binary_data_size" in cut.json()["error"]
    lying = httpx.post(
        url, content=single, headers={**headers, "Inference-Header-Content-Length": "x"}
    )
    assert lying.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "exactly one of the input fields"),
        (json.dumps({"instances": [ROW], "inputs": [ROW]}).encode(), 400, "exactly one"),
        (
            json.dumps({"dataframe_split": {"columns": COLS[:4], "data": [ROW[:4]]}}).encode(),
            400,
            "missing input column(s): f4",
        ),
        # Rows without names, for a model fitted on named columns: refused, as MLflow does.
        (json.dumps({"instances": [ROW]}).encode(), 400, "rows without column names"),
        (json.dumps(named_rows([ROW[:3]])).encode(), 400, "expected 5"),
        (
            json.dumps({"inputs": {**{c: [1.0] for c in COLS}, "f0": ["high"]}}).encode(),
            400,
            "expects double",
        ),
        (
            json.dumps({"inputs": {**{c: [1.0] for c in COLS}, "f0": [None]}}).encode(),
            400,
            "missing value",
        ),
        (json.dumps(named_rows([ROW] * 51)).encode(), 413, "at most 50"),
    ],
)
def test_bad_requests_get_a_json_4xx_naming_the_problem(
    served: ModelServer, body: bytes, status: int, needle: str
) -> None:
    r = httpx.post(
        f"{served.url}/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    assert needle in r.json()["error"]


def test_bad_oip_requests_and_huge_bodies(served: ModelServer) -> None:
    url = f"{served.url}/v2/models/fraud/infer"
    wrong_shape = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW[:4]}]}
    assert "single tensor must be [rows, 5]" in httpx.post(url, json=wrong_shape).json()["error"]
    wrong_type = {
        "inputs": [{"name": c, "shape": [1], "datatype": "BYTES", "data": ["a"]} for c in COLS]
    }
    r = httpx.post(url, json=wrong_type)
    assert r.status_code == 400 and "datatype BYTES" in r.json()["error"]
    assert httpx.post(f"{served.url}/v2/models/other/infer", json=wrong_shape).status_code == 404
    huge = b'{"instances": [' + b"[1,2,3,4,5]," * 2_000_000 + b"[1,2,3,4,5]]}"
    r = httpx.post(
        f"{served.url}/invocations", content=huge, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert (
        httpx.post(
            f"{served.url}/invocations", content=b"x", headers={"content-type": "text/xml"}
        ).status_code
        == 415
    )
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'shipyard_inference_errors_total{deployment="fraud",reason="invalid_input"}' in metrics


def test_metrics_and_prediction_log(home: Path, served: ModelServer) -> None:
    for i in range(20):
        httpx.post(
            f"{served.url}/invocations",
            json=named_rows([ROW, ROW]),
            headers={"x-request-id": f"r{i}"},
        )
    metrics = httpx.get(f"{served.url}/metrics").text
    assert (
        'shipyard_inference_requests_total{code="200",deployment="fraud",model="fraud",version="1"} 20.0'
        in metrics
    )
    assert "shipyard_inference_request_duration_seconds_bucket" in metrics
    assert (
        'shipyard_model_info{deployment="fraud",engine="onnxruntime",model="fraud",role="primary",version="1"} 1.0'
        in metrics
    )
    served.stop()  # closes the open Parquet file
    out = subprocess.run(
        [sys.executable, "-m", "shipyard", "predlog", "tail", "-n", "100", "--json"],
        capture_output=True, text=True, env={**os.environ, "SHIPYARD_URI": str(home)}, check=True,
    )  # fmt: skip
    rows = json.loads(out.stdout)["rows"]
    assert len(rows) == 40
    assert {r["request_id"] for r in rows} == {f"r{i}" for i in range(20)}
    assert rows[0]["input.f0"] == ROW[0] and rows[0]["version"] == "1"
    assert {"output.prediction", "output.proba_1", "latency_seconds"} <= set(rows[0])


def test_alias_move_is_followed_without_failing_requests(home: Path, served: ModelServer) -> None:
    failures: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                r = client.post(f"{served.url}/invocations", json=named_rows([ROW]))
                if r.status_code != 200:
                    failures.append(r.status_code)
                versions.add(r.headers.get("x-model-version", ""))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    shipyard.set_uri(str(home))
    shipyard.set_alias("fraud", "champion", 2, reason="test setup")
    shipyard.set_uri(None)
    deadline = time.monotonic() + 20
    while "fraud/2" not in versions and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    assert versions == {"fraud/1", "fraud/2"}
    assert "shipyard_model_swaps_total" in httpx.get(f"{served.url}/metrics").text


def test_canary_and_shadow(home: Path) -> None:
    srv = ModelServer(
        home, "models:/fraud/1", "--canary", "models:/fraud/2", "--canary-percent", "30",
        "--shadow", "models:/fraud/2", "--name", "fraud-live",
    )  # fmt: skip
    try:
        seen = [
            httpx.post(
                f"{srv.url}/invocations",
                json=named_rows([ROW]),
                headers={"x-request-id": f"c{i}"},
            ).headers["x-model-version"]
            for i in range(200)
        ]
        share = seen.count("fraud/2") / len(seen)
        assert 0.15 < share < 0.45
        # The same request id always lands on the same version.
        again = httpx.post(
            f"{srv.url}/invocations", json=named_rows([ROW]), headers={"x-request-id": "c7"}
        )
        assert again.headers["x-model-version"] == seen[7]
        assert (
            httpx.post(
                f"{srv.url}/v2/models/fraud/versions/2/infer",
                json={"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": ROW}]},
            ).json()["model_version"]
            == "2"
        )
    finally:
        srv.stop()
    from shipyard.predlog.reader import read_log

    log = read_log(home / "predictions", deployment="fraud-live").to_pandas()
    assert set(log["role"]) == {"primary", "canary", "shadow"}
    assert (log["role"] == "shadow").sum() >= 190  # every live request, minus at most a few


def test_unwritable_prediction_log_does_not_stop_serving(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    srv = ModelServer(
        home, "models:/fraud@champion", env={"SHIPYARD_PREDLOG": str(blocker / "predictions")}
    )
    try:
        for _ in range(5):
            assert httpx.post(f"{srv.url}/invocations", json=named_rows([ROW])).status_code == 200
        # The writer drops in batches, in the background: wait for all five (bounded).
        dropped = (
            'shipyard_predlog_rows_total{deployment="fraud",outcome="dropped_write_error"} 5.0'
        )
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = httpx.get(f"{srv.url}/metrics").text
            if dropped in text:
                break
            time.sleep(0.3)
        assert dropped in text
    finally:
        srv.stop()
    assert "prediction log: cannot write" in Path(srv.log.name).read_text()


def test_serving_an_unknown_model_fails_fast(home: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shipyard", "serve", "models:/nope@champion", "--port", str(free_port())],
        capture_output=True, text=True, env={**os.environ, "SHIPYARD_URI": str(home)}, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "'nope' does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_two_workers_share_the_port(home: Path) -> None:
    srv = ModelServer(home, "models:/fraud@champion", "--workers", "2")
    try:
        with httpx.Client() as client:
            codes = {
                client.post(f"{srv.url}/invocations", json=named_rows([ROW])).status_code
                for _ in range(40)
            }
        assert codes == {200}
        for _ in range(20):
            httpx.post(f"{srv.url}/invocations", json=named_rows([ROW]))  # new connections
        text = httpx.get(f"{srv.url}/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("shipyard_inference_requests_total{")
        )
        assert float(line.rsplit(" ", 1)[1]) == 60.0  # summed across both workers
    finally:
        srv.stop()


def test_serving_from_a_central_server_follows_its_aliases(home: Path, tmp_path: Path) -> None:
    """A model server may read the registry through a Shipyard server (SHIPYARD_URI=http)."""
    central = ServerProcess(home)
    predlog = tmp_path / "remote-predictions"
    srv = ModelServer(
        home,
        "models:/fraud@champion",
        "--poll-interval",
        "0.5",
        env={"SHIPYARD_URI": central.url, "SHIPYARD_PREDLOG": str(predlog)},
    )
    try:
        first = httpx.post(f"{srv.url}/invocations", json=named_rows([ROW]))
        assert first.status_code == 200 and first.headers["x-model-version"] == "fraud/1"
        shipyard.set_uri(central.url)
        shipyard.set_alias("fraud", "champion", 2, reason="test setup")
        shipyard.set_uri(None)
        deadline = time.monotonic() + 20
        version = ""
        while version != "fraud/2" and time.monotonic() < deadline:
            time.sleep(0.2)
            r = httpx.post(f"{srv.url}/invocations", json=named_rows([ROW]))
            version = r.headers["x-model-version"]
        assert version == "fraud/2"
    finally:
        srv.stop()
        central.stop()
    from shipyard.predlog.reader import read_log

    assert read_log(predlog, deployment="fraud").num_rows >= 2


def test_a_deployment_threshold_decides_instead_of_half(home: Path) -> None:
    import numpy as np

    rows = np.random.default_rng(0).normal(size=(40, 5)).tolist()
    decided = {}
    for threshold in ("0.001", "0.999"):
        srv = ModelServer(home, "models:/fraud/1", "--threshold", threshold)
        try:
            reply = httpx.post(f"{srv.url}/invocations", json=named_rows(rows))
            assert reply.status_code == 200, reply.text
            decided[threshold] = reply.json()["predictions"]
        finally:
            srv.stop()
    assert set(decided["0.001"]) == {1} and set(decided["0.999"]) == {0}
    # A shadow decides at the served threshold too, not at its own 0.5.
    srv = ModelServer(
        home, "models:/fraud/1", "--threshold", "0.001", "--shadow", "models:/fraud/2",
        "--name", "fraud-cut",
    )  # fmt: skip
    try:
        assert httpx.post(f"{srv.url}/invocations", json=named_rows(rows)).status_code == 200
    finally:
        srv.stop()
    from shipyard.predlog.reader import read_log

    log = read_log(home / "predictions", deployment="fraud-cut").to_pandas()
    shadow = log[log["role"] == "shadow"]
    assert len(shadow) == len(rows)
    assert set(shadow["output.prediction"]) == {1}
    out = subprocess.run(
        [sys.executable, "-m", "shipyard", "serve", "models:/fraud/1", "--threshold", "1.5",
         "--port", str(free_port())],
        capture_output=True, text=True, env={**os.environ, "SHIPYARD_URI": str(home)}, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "threshold must be between 0 and 1" in out.stderr


def test_replicas_behind_a_balancer_keep_one_prediction_log_without_lost_rows(
    home: Path,
) -> None:
    """Two `shipyard serve` processes on one store and one log folder (what N replicas
    behind any load balancer share): every answered row is logged once, from both."""
    from concurrent.futures import ThreadPoolExecutor

    from shipyard.predlog.reader import log_files, read_log

    predictions = home / "shared-predictions"
    env = {"SHIPYARD_PREDLOG": str(predictions)}
    replicas = [
        ModelServer(home, "models:/fraud@champion", "--name", "fraud-live", env=env)
        for _ in range(2)
    ]
    sent: list[str] = []
    try:

        def call(i: int) -> str:
            url = replicas[i % 2].url  # round robin, as a balancer would
            rid = f"req-{i:04d}"
            answer = httpx.post(
                f"{url}/invocations",
                json=named_rows([ROW, ROW, ROW]),
                headers={"x-request-id": rid},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            return rid

        with ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(call, range(200)))
        bad = httpx.post(f"{replicas[0].url}/invocations", json={"instances": [[1.0]]})
        assert bad.status_code == 400
    finally:
        for replica in replicas:
            replica.stop()  # SIGTERM: each closes its files
    table = read_log(predictions, deployment="fraud-live")
    assert table.num_rows == 600
    ids = table.column("request_id").to_pylist()
    assert sorted(set(ids)) == sorted(sent) and all(ids.count(r) == 3 for r in sent[:20])
    writers = {p.name.split("-")[3] for p in log_files(predictions, "fraud-live")}
    assert len(writers) == 2, writers  # both replicas' files, side by side
    assert read_log(predictions, deployment="fraud-live", failed=True).num_rows == 1


def test_a_declared_deployment_is_served_by_name(home: Path) -> None:
    spec = home.parent / "shipyard.yaml"
    spec.write_text(
        "apiVersion: shipyard.dev/v1\nkind: Deployment\nmetadata: {name: fraud-live}\n"
        'spec: {model: "models:/fraud@champion", canary: "models:/fraud/2", canary_percent: 50,'
        " workers: 2, threshold: 0.4}\n"
    )
    env = {"SHIPYARD_URI": str(home)}
    assert cli("apply", "-f", str(spec), env=env).returncode == 0
    srv = ModelServer(home, "fraud-live")
    try:
        roles = set()
        for _ in range(30):
            reply = httpx.post(f"{srv.url}/invocations", json=named_rows([ROW]))
            assert reply.status_code == 200
            roles.add(reply.headers.get("x-model-version"))
        assert roles == {"fraud/1", "fraud/2"}  # the declared canary takes a share
        started = " ".join(Path(srv.log.name).read_text().split())  # rich wraps long lines
        assert "as 'fraud-live'" in started and "(2 workers;" in started
    finally:
        srv.stop()
    missing = cli("serve", "nope", env=env)
    assert (
        missing.returncode == 2
        and "neither a model URI nor a declared Deployment" in missing.stderr
    )
