"""The model server under more traffic than it can score: shed early, drop the abandoned."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import shipyard
from tests.integration.test_model_server import ModelServer

COLS = [f"f{i}" for i in range(8)]
ROWS = 4000


@pytest.fixture
def slow_home(tmp_path: Path) -> Iterator[Path]:
    """A forest scored natively (no ONNX): tens of milliseconds for a few thousand rows."""
    store = tmp_path / "store"
    shipyard.set_uri(str(store))
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, len(COLS))), columns=COLS)
    model = RandomForestClassifier(n_estimators=150, random_state=0).fit(X, X["f0"] > 0)
    shipyard.register_model("slow", model, X[:5], convert_onnx=False)
    shipyard.set_uri(None)
    return store


def _body() -> dict[str, object]:
    data = np.random.default_rng(1).normal(size=(ROWS, len(COLS))).round(3).tolist()
    return {"dataframe_split": {"columns": COLS, "data": data}}


def _counter(text: str, reason: str) -> float:
    found = re.search(
        rf'shipyard_inference_errors_total{{[^}}]*reason="{reason}"[^}}]*}} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0


def _slow_server(home: Path, *, max_queue: int) -> ModelServer:
    return ModelServer(
        home, "models:/slow/1", "--max-rows", str(ROWS), "--max-queue", str(max_queue),
        "--queue-timeout", "30", "--no-predlog",
    )  # fmt: skip


def test_a_burst_past_the_queue_is_shed_with_503_and_the_server_recovers(slow_home: Path) -> None:
    srv = _slow_server(slow_home, max_queue=4)
    body = _body()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as warm:
            assert warm.post("/invocations", json=body).status_code == 200

        def call(_: int) -> httpx.Response:
            return httpx.post(f"{srv.url}/invocations", json=body, timeout=60)

        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(call, range(40)))
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 503}, codes
        shed = [a for a in answers if a.status_code == 503]
        assert len(shed) >= 15 and codes.count(200) >= 5, codes
        assert all(
            a.headers["retry-after"] == "1" and "overloaded" in a.json()["error"] for a in shed
        )
        recovered = httpx.post(f"{srv.url}/invocations", json=body, timeout=10)
        assert recovered.status_code == 200
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert _counter(metrics, "overloaded") == len(shed)
    finally:
        srv.stop()


def test_requests_whose_client_gave_up_are_not_scored(slow_home: Path) -> None:
    srv = _slow_server(slow_home, max_queue=64)
    body = _body()
    try:

        def impatient(_: int) -> str:
            try:
                return str(httpx.post(f"{srv.url}/invocations", json=body, timeout=0.3).status_code)
            except httpx.TimeoutException:
                return "timeout"

        with ThreadPoolExecutor(20) as pool:
            outcomes = list(pool.map(impatient, range(20)))
        assert outcomes.count("timeout") >= 5, outcomes
        # The abandoned requests are dropped instead of scored, so the server is soon free.
        recovered = httpx.post(f"{srv.url}/invocations", json=body, timeout=20)
        assert recovered.status_code == 200
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert _counter(metrics, "client_gone") >= 1
        scored = sum(
            float(v)
            for v in re.findall(
                r'shipyard_inference_requests_total{[^}]*code="200"[^}]*} (\S+)', metrics
            )
        )
        assert scored < 20
    finally:
        srv.stop()


def test_model_server_with_token_auth_refuses_anonymous_scoring(slow_home: Path) -> None:
    from shipyard.bootstrap import local_backend
    from shipyard.core.actor import acting_as
    from shipyard.core.settings import Settings

    backend = local_backend(Settings(uri=str(slow_home)))
    with acting_as("root"):
        backend.governance.identity.create_user("svc", "viewer")
        _, secret = backend.governance.identity.create_token("svc", "scoring", "1d")
    backend.close()
    srv = ModelServer(slow_home, "models:/slow/1", "--auth", "tokens", "--no-predlog")
    body = {"dataframe_split": {"columns": COLS, "data": [[0.0] * len(COLS)]}}
    try:
        assert httpx.get(f"{srv.url}/v2/health/ready").status_code == 200
        anonymous = httpx.post(f"{srv.url}/invocations", json=body)
        assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["error"]
        forged = httpx.post(
            f"{srv.url}/invocations", json=body, headers={"Authorization": "Bearer shy_nope"}
        )
        assert forged.status_code == 401
        assert httpx.get(f"{srv.url}/metrics").status_code == 401
        ok = httpx.post(
            f"{srv.url}/invocations", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert ok.status_code == 200, ok.text
    finally:
        srv.stop()
