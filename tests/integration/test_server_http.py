"""The REST API against a live server process: bad input gets 4xx JSON, never a 500."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.conftest import ServerProcess


def _run(srv: ServerProcess) -> str:
    exp = httpx.post(f"{srv.url}/api/v1/experiments", json={"name": "http"}).json()
    run = httpx.post(f"{srv.url}/api/v1/runs", json={"experiment_id": exp["id"], "name": "r"})
    assert run.status_code == 201
    return str(run.json()["id"])


def _assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


def test_health_and_openapi(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/runs/{run_id}/batch" in spec["paths"]
    assert "/api/v1/models/{name}/aliases/{alias}" in spec["paths"]


def test_malformed_and_wrong_bodies_get_4xx_json(server: ServerProcess) -> None:
    run_id = _run(server)
    url = f"{server.url}/api/v1/runs/{run_id}/batch"
    _assert_json_error(
        httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 400
    )
    _assert_json_error(httpx.post(url, json={"metrics": [{"key": "a"}]}), 422)
    _assert_json_error(httpx.post(url, json={"metrics": "nope"}), 422)
    _assert_json_error(httpx.post(url, json={"surprise": 1}), 422)
    body = _assert_json_error(
        httpx.post(url, json={"metrics": [{"key": "../x", "value": 1, "timestamp": 1}]}), 400
    )
    assert body["type"] == "InvalidInputError"
    _assert_json_error(
        httpx.post(f"{server.url}/api/v1/runs/search", json={"filter": "metrics.auc >> 1"}), 400
    )


def test_non_finite_values_travel_as_strings(server: ServerProcess) -> None:
    run_id = _run(server)
    sent = httpx.post(
        f"{server.url}/api/v1/runs/{run_id}/batch",
        json={
            "metrics": [
                {"key": "n", "value": "NaN", "timestamp": 1},
                {"key": "i", "value": "-Infinity", "timestamp": 1},
            ]
        },
    )
    assert sent.status_code == 204, sent.text
    metrics = httpx.get(f"{server.url}/api/v1/runs/{run_id}").json()["metrics"]
    assert metrics == {"n": "NaN", "i": "-Infinity"}


def test_unknown_ids_get_404_json(server: ServerProcess) -> None:
    body = _assert_json_error(
        httpx.get(f"{server.url}/api/v1/runs/run_01m8j07665dv9xfct2x23tvv6b"), 404
    )
    assert body["type"] == "NotFoundError"
    _assert_json_error(httpx.get(f"{server.url}/api/v1/runs/not-an-id"), 400)
    _assert_json_error(httpx.get(f"{server.url}/api/v1/nothing-here"), 404)


def test_registry_routes_refuse_bad_input_with_4xx_json(server: ServerProcess) -> None:
    models = f"{server.url}/api/v1/models"
    body = _assert_json_error(httpx.get(f"{models}/fraud"), 404)
    assert body["type"] == "NotFoundError"
    _assert_json_error(httpx.get(f"{models}/fraud/versions/0"), 400)
    _assert_json_error(httpx.get(f"{models}/fraud/versions/two"), 400)
    _assert_json_error(httpx.put(f"{models}/fraud/aliases/champion", json={"version": "x"}), 422)
    _assert_json_error(httpx.put(f"{models}/fraud/aliases/bad%20alias", json={"version": 1}), 400)
    run_id = _run(server)
    # A run without a logged package cannot be registered; nothing is created.
    missing = _assert_json_error(
        httpx.post(f"{models}/fraud/versions", json={"run_id": run_id}), 404
    )
    assert "not a model package" in str(missing["error"])
    _assert_json_error(httpx.post(f"{models}/fraud/versions", json={"run": run_id}), 422)
    assert httpx.get(models).json() == {"models": []}
    _assert_json_error(httpx.patch(f"{models}/fraud/versions/1", json={"state": "staging"}), 422)


def test_oversized_bodies_are_refused_with_413(tmp_path: object) -> None:
    from pathlib import Path

    srv = ServerProcess(
        Path(str(tmp_path)) / "small",
        {"SHIPYARD_MAX_REQUEST_BYTES": "4096", "SHIPYARD_MAX_ARTIFACT_BYTES": "10000"},
    )
    try:
        run_id = _run(srv)
        big = {"metrics": [{"key": "k", "value": 1.0, "timestamp": i} for i in range(500)]}
        _assert_json_error(httpx.post(f"{srv.url}/api/v1/runs/{run_id}/batch", json=big), 413)

        def chunks():  # no Content-Length: the limit must hold while streaming
            for _ in range(20):
                yield b"x" * 1000

        _assert_json_error(
            httpx.put(f"{srv.url}/api/v1/runs/{run_id}/artifacts/big.bin", content=chunks()), 413
        )
        ok = httpx.put(f"{srv.url}/api/v1/runs/{run_id}/artifacts/small.bin", content=b"y" * 100)
        assert ok.status_code == 201
        listed = httpx.get(f"{srv.url}/api/v1/runs/{run_id}/artifacts").json()["artifacts"]
        assert [a["name"] for a in listed] == ["small.bin"]
    finally:
        srv.stop()


def test_artifact_names_cannot_escape_over_http(server: ServerProcess) -> None:
    run_id = _run(server)
    for name in ("..%2F..%2Fetc%2Fpasswd", "a/%2E%2E/%2E%2E/x", "%00nul"):
        response = httpx.put(f"{server.url}/api/v1/runs/{run_id}/artifacts/{name}", content=b"x")
        assert 400 <= response.status_code < 500, (name, response.status_code)
    assert httpx.get(f"{server.url}/api/v1/runs/{run_id}/artifacts").json()["artifacts"] == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_non_loopback_bind_without_auth_is_refused(host: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "server", "--host", host, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "without authentication" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_multi_worker_server_shares_one_store(tmp_path: object) -> None:
    import os
    import time
    from pathlib import Path

    from tests.conftest import free_port

    home = Path(str(tmp_path)) / "multi"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_URI"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "server", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        exp = httpx.post(f"{url}/api/v1/experiments", json={"name": "multi"}).json()
        ids = [
            httpx.post(
                f"{url}/api/v1/runs", json={"experiment_id": exp["id"], "name": f"r{i}"}
            ).json()["id"]
            for i in range(10)
        ]
        for run_id in ids:  # new connections land on either worker; all see every run
            with httpx.Client() as fresh:
                assert fresh.get(f"{url}/api/v1/runs/{run_id}").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
