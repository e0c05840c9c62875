"""MLflow's REST dialect on `shipyard server`, spoken over plain HTTP (no mlflow package):
error shapes MLflow's client branches on, refusals of what Shipyard does not do, and the
registration checks of a crafted MLflow package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ServerProcess
from tests.resources.malicious import craft_skops, marker_command, reduce_node

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One loopback server for the module (each test makes its own objects)."""
    proc = ServerProcess(tmp_path_factory.mktemp("mlflow-http") / ".shipyard")
    try:
        yield proc
    finally:
        proc.stop()


def _post(server: ServerProcess, route: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{server.url}{API}/{route}", json=body, timeout=30)


def _run(server: ServerProcess) -> dict[str, object]:
    # "0" is MLflow's default experiment, the one its client uses when none is set.
    response = _post(server, "runs/create", {"experiment_id": "0", "run_name": "r"})
    assert response.status_code == 200, response.text
    run: dict[str, object] = response.json()["run"]
    return run


@pytest.mark.parametrize(
    ("method", "route", "body", "status", "code"),
    [
        (
            "GET",
            "runs/get?run_id=run_01aaaaaaaaaaaaaaaaaaaaaaaa",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "GET",
            "experiments/get-by-name?experiment_name=nope",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "POST",
            "runs/log-metric",
            {"run_id": "r", "key": "k", "value": "x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("POST", "runs/log-batch", {"metrics": []}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "experiments/delete", {"experiment_id": "1"}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "runs/restore", {"run_id": "r"}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "no/such/route", {}, 404, "ENDPOINT_NOT_FOUND"),
        ("POST", "experiments/search", {"filter": "metrics.x > 1"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_errors_come_back_in_mlflows_shape(
    server: ServerProcess,
    method: str,
    route: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    response = httpx.request(method, f"{server.url}{API}/{route}", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.json()["message"]


def test_a_second_experiment_of_the_same_name_is_resource_already_exists(
    server: ServerProcess,
) -> None:
    assert _post(server, "experiments/create", {"name": "twice"}).status_code == 200
    again = _post(server, "experiments/create", {"name": "twice"})
    assert (again.status_code, again.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")


def test_params_keep_their_first_value_and_nan_metrics_round_trip(server: ServerProcess) -> None:
    run = _run(server)
    run_id = run["info"]["run_id"]  # type: ignore[index]
    assert (
        _post(
            server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}
        ).status_code
        == 200
    )
    changed = _post(server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert changed.status_code == 400
    metric = {"run_id": run_id, "key": "m", "value": "NaN", "timestamp": 1, "step": 0}
    assert _post(server, "runs/log-metric", metric).status_code == 200
    got = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert {"key": "p", "value": "1"} in got["data"]["params"]
    assert got["data"]["metrics"][0]["value"] == "NaN"


def test_artifact_proxy_lists_folders_and_streams_files(server: ServerProcess) -> None:
    run = _run(server)
    root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")  # type: ignore[index]
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}"
    assert httpx.put(f"{base}/data/a.csv", content=b"x,y\n1,2\n").status_code == 200
    assert httpx.put(f"{base}/top.txt", content=b"hi").status_code == 200
    listing = httpx.get(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": root}
    ).json()["files"]
    assert listing == [
        {"path": "data", "is_dir": True},
        {"path": "top.txt", "is_dir": False, "file_size": 2},
    ]
    inner = httpx.get(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{root}/data"}
    ).json()["files"]
    assert inner == [{"path": "a.csv", "is_dir": False, "file_size": 8}]
    assert httpx.get(f"{base}/data/a.csv").content == b"x,y\n1,2\n"
    outside = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/../../x")
    assert outside.status_code in (400, 404)
    assert httpx.delete(f"{base}/top.txt").status_code == 400


def test_a_crafted_mlflow_package_is_refused_at_registration(
    server: ServerProcess, tmp_path: Path
) -> None:
    """MLflow's own keys (pickled_model, skops_trusted_types) get no more trust than ours."""
    marker = tmp_path / "PWNED"
    model_file = tmp_path / "model.skops"
    types = craft_skops(model_file, reduce_node("os", "system", marker_command(marker)))
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops"},
            "sklearn": {
                "pickled_model": "model.skops",
                "serialization_format": "skops",
                "skops_trusted_types": types,
                "sklearn_version": "1.8.0",
            },
        },
    }
    run = _run(server)
    root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")  # type: ignore[index]
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model"
    httpx.put(f"{base}/MLmodel", content=yaml.safe_dump(mlmodel).encode()).raise_for_status()
    httpx.put(f"{base}/model.skops", content=model_file.read_bytes()).raise_for_status()
    _post(server, "registered-models/create", {"name": "evil"})
    created = _post(
        server,
        "model-versions/create",
        {"name": "evil", "source": f"runs:/{run['info']['run_id']}/model"},  # type: ignore[index]
    )
    assert created.status_code == 400, created.text
    assert created.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "os.system" in created.json()["message"]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b'{"run_id": "r", "metrics": [', "not valid JSON"),
        (b"[1, 2]", "log-batch"),
        (b'{"metrics": []}', "run_id"),
        (b'{"run_id": "%s", "metrics": [7]}', "metrics.1"),
        (
            # beyond any float: no 64-bit walk of the body refuses it now, the point check does
            b'{"run_id": "%s", "metrics": [{"key": "m", "value": 1' + b"0" * 400 + b"}]}",
            "number",
        ),
        (
            b'{"run_id": "%s", "metrics": [{"key": "m", "value": 1, "timestamp": 99999999999999999999}]}',
            "timestamp",
        ),
        (b'{"run_id": "%s", "metrics": [{"key": "m", "value": 1, "step": -1}]}', "step"),
        (b'{"run_id": "%s", "metrics": [{"key": "m", "value": "0.5"}]}', "number"),
    ],
)
def test_a_bad_log_batch_is_refused_whole_with_its_reason(
    server: ServerProcess, body: bytes, reason: str
) -> None:
    """log-batch parses its own body (the client's hot path): every refusal is still a 400
    in MLflow's shape naming what is wrong, and no point of the batch is kept."""
    run_id = str(_run(server)["info"]["run_id"])  # type: ignore[index]
    ok = {"key": "good", "value": 1.0, "timestamp": 1, "step": 0}
    if b"%s" in body:
        body = body.replace(b"%s", run_id.encode())
        body = body.replace(b'"metrics": [', b'"metrics": [' + json.dumps(ok).encode() + b", ")
    response = httpx.post(
        f"{server.url}{API}/runs/log-batch",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert reason in response.json()["message"], response.json()["message"]
    got = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert got["data"].get("metrics", []) == []
