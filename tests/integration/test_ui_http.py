"""The web UI over HTTP on a real server: CSRF, cookies, headers, refusals as pages."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.bootstrap import local_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import PipelineError
from shipyard.core.settings import Settings
from shipyard.sdk.pipelines import runner
from shipyard.ui.pages import CSP
from tests.conftest import ServerProcess, free_port
from tests.integration.test_pipelines import LOGGED, import_source


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    store = tmp_path / "store"
    backend = local_backend(Settings(uri=str(store)))
    tokens = {}
    with acting_as("admin"):
        for name, role in (("vic", "viewer"), ("bob", "approver")):
            backend.governance.identity.create_user(name, role)
            tokens[name] = backend.governance.identity.create_token(name, "t")[1]
    backend.close()
    proc = ServerProcess(store, {"SHIPYARD_AUTH": "tokens"})
    yield proc, tokens
    proc.stop()


@contextmanager
def _signed_in(url: str, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/login", data={"token": token, "next": "/models"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/models"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        yield client


def test_a_state_change_without_the_sessions_csrf_token_is_refused(
    token_server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, tokens = token_server
    with _signed_in(proc.url, tokens["bob"]) as client:
        page = client.get("/models")
        token = _csrf(page.text)
        for sent in ({}, {"csrf": "0" * 64}):
            refused = client.post("/models/fraud/versions/1/approve", data=sent)
            assert refused.status_code == 403
            assert "CSRF" in refused.text
            assert refused.headers["content-type"].startswith("text/html")
        # With the token the request gets through to the service (no such model here).
        passed = client.post("/models/fraud/versions/1/approve", data={"csrf": token})
        assert passed.status_code == 404
        # The API answers a cookie-authenticated write only with the header as well.
        api = client.post("/api/v1/runs/expire", json={"silent_for": 3600})
        assert api.status_code == 403
        assert "CSRF" in api.json()["error"]


def test_a_viewer_is_refused_an_approval_by_the_server_and_sees_why(
    token_server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, tokens = token_server
    with _signed_in(proc.url, tokens["vic"]) as client:
        token = _csrf(client.get("/").text)
        refused = client.post("/models/fraud/versions/1/approve", data={"csrf": token})
        assert refused.status_code == 403
        assert "vic has role viewer" in refused.text
        assert "needs approver" in refused.text


def test_pages_without_a_session_send_the_browser_to_sign_in(
    token_server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, _ = token_server
    answer = httpx.get(f"{proc.url}/runs?filter=x", timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fruns"
    forged = httpx.get(f"{proc.url}/runs", cookies={"shipyard_session": "shy_forged"}, timeout=10)
    assert forged.status_code == 303
    # A refused post before sign-in names nobody (not the local admin of loopback mode).
    anonymous = httpx.post(f"{proc.url}/models/fraud/versions/1/approve", timeout=10)
    assert anonymous.status_code == 401
    assert "anonymous" in anonymous.text and ">local " not in anonymous.text
    # Open redirects are not: a next= pointing elsewhere lands on the home page.
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        form = client.get("/login?next=//evil.example/x")
        assert 'value="/"' in form.text


def test_pages_carry_security_headers_and_bad_input_is_a_page_not_a_500(
    token_server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, tokens = token_server
    with _signed_in(proc.url, tokens["vic"]) as client:
        home = client.get("/")
        assert home.headers["content-security-policy"] == CSP
        assert home.headers["x-frame-options"] == "DENY"
        assert home.headers["cache-control"] == "no-store"
        for path, status in (
            ("/runs?filter=metrics.auc+>", 400),
            ("/runs?size=100000", 400),
            ("/runs/run_nope", 400),
            ("/compare?run=a", 400),
            ("/models/nope", 404),
            ("/models/nope/versions/abc", 400),
            ("/monitors/nope", 404),
            ("/lineage?node=weird:thing", 404),
            ("/audit?limit=0", 400),
            ("/nowhere", 404),
        ):
            answer = client.get(path)
            assert answer.status_code == status, (path, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/html"), path
            assert 'role="alert"' in answer.text, path
        # Static assets come from Shipyard itself (no CDN): the chart library is in the wheel.
        script = client.get("/static/uPlot.iife.min.js")
        assert script.status_code == 200
        assert len(script.content) < 100_000


@pytest.mark.slow
def test_shipyard_ui_serves_the_local_store_on_loopback_with_double_submit_csrf(
    tmp_path: Path,
) -> None:
    shipyard.set_uri(str(tmp_path / "store"))
    with shipyard.start_run(experiment="ui-local", run_name="first") as run:
        for step in range(300):
            shipyard.log_metric("loss", 1 / (step + 1), step=step)
    shipyard.flush()
    module = import_source(tmp_path / "ui_logged_flow.py", LOGGED, "ui_logged_flow")
    with pytest.raises(PipelineError):
        module.logged.run(n=5)
    failed_run = runner().store.list_pipeline_runs("logged", 1)[0].id
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "--uri",
            str(tmp_path / "store"),
            "ui",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = client.get(f"/runs/{run.id}")
            assert page.status_code == 200
            assert "300 points" in page.text  # the whole curve goes to the chart
            dag = client.get(f"/pipelines/runs/{failed_run}")
            assert dag.status_code == 200
            assert "about to divide" in dag.text  # the step's own output
            assert "ZeroDivisionError" in dag.text  # and its traceback
            assert "shipyard_csrf" in page.headers["set-cookie"]
            token = _csrf(page.text)
            # A cross-site form post carries neither the cookie's value nor the field.
            bare = httpx.post(f"http://127.0.0.1:{port}/logout", timeout=10)
            assert bare.status_code == 403
            ok = client.post("/logout", data={"csrf": token})
            assert ok.status_code == 303
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
