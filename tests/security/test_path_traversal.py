"""Path traversal in every encoding, on every route that takes a path, name or id: nothing
outside the store is read, written or deleted, and no answer is a 5xx.

Requests are sent with http.client so the raw request target reaches the server as
written (httpx and browsers resolve ``../`` before sending).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from unicodedata import normalize
from urllib.parse import quote, unquote

import pytest

from shipyard.bootstrap import rest_backend
from shipyard.core.settings import Settings
from tests.conftest import ServerProcess

CANARY = "canary-" + secrets.token_hex(8)
PASSWD = "root:x:0:0"

# One step up, written every way a server or a filesystem might decode it.
UP = [
    "../",
    "..%2f",
    "%2e%2e/",
    "%2e%2e%2f",
    "%2E%2E%2F",
    "%252e%252e%252f",  # double encoded
    "..%5c",  # backslash
    "..\\",
    "%c0%ae%c0%ae/",  # overlong UTF-8 dots
    "..%c0%af",  # overlong UTF-8 slash
    "%ef%bc%8e%ef%bc%8e%ef%bc%8f",  # fullwidth dots and solidus
    "..%e2%88%95",  # division slash
    "....//",
    "..;/",
    ".%2e/",
    "%2e./",
]
ABSOLUTE = [
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "file:///etc/passwd",
    "%00/etc/passwd",
]


def _targets(leaf: str) -> list[str]:
    found = [up * depth + leaf for up in UP for depth in (1, 3, 6, 10)]
    return found + ABSOLUTE + [f"ok.txt%00{up}{leaf}" for up in UP[:4]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str]]:
    (tmp_path / "canary.txt").write_text(CANARY)
    srv = ServerProcess(tmp_path / "server-home")
    backend = rest_backend(Settings(uri=srv.url))
    run = backend.tracking.create_run("traversal")
    ok = tmp_path / "ok.txt"
    ok.write_text("fine")
    backend.tracking.log_artifact(run.id, ok)
    backend.close()
    ok.unlink()
    try:
        yield srv, run.id, run.experiment_id
    finally:
        srv.stop()


def _send(
    srv: ServerProcess, method: str, target: str, body: bytes | None = None
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body and body[:1] == b"{" else {}
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _outside(root: Path, store: Path) -> set[tuple[str, int]]:
    """Every file under ``root`` but outside the store, with its size."""
    found = set()
    for folder, _dirs, files in os.walk(root):
        if Path(folder).is_relative_to(store):
            continue
        for name in files:
            path = Path(folder) / name
            found.add((str(path), path.stat().st_size))
    return found


def test_no_route_reads_or_writes_outside_the_store(
    site: tuple[ServerProcess, str, str], tmp_path: Path
) -> None:
    srv, run_id, exp_id = site
    store = tmp_path / "server-home"
    before = _outside(tmp_path, store)
    marker = f"written-{secrets.token_hex(4)}"
    reads = [
        f"/api/v1/runs/{run_id}/artifacts/{{t}}",
        "/api/2.0/mlflow-artifacts/artifacts/{t}",
        f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{{t}}",
        "/api/2.0/mlflow-artifacts/artifacts?path={t}",
        "/api/v1/models/{t}",
        "/api/v1/models/{t}/versions/1",
        "/api/v1/experiments/{t}",
        "/api/v1/runs/{t}",
        "/api/2.0/mlflow/runs/get?run_id={t}",
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name={t}",
        "/api/2.0/mlflow/artifacts/list?run_id=" + run_id + "&path={t}",
        "/static/{t}",
        "/runs/{t}",
        "/models/{t}",
        "/monitors/{t}",
    ]
    writes = [
        ("PUT", f"/api/v1/runs/{run_id}/artifacts/{{t}}"),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{{t}}"),
        ("DELETE", f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{{t}}"),
    ]
    sent, problems = 0, []
    for leaf in ("canary.txt", "server-home/../canary.txt"):
        for target in _targets(leaf):
            for template in reads:
                url = template.replace("{t}", target)
                status, text = _send(srv, "GET", url)
                sent += 1
                if status >= 500 or CANARY in text or PASSWD in text:
                    problems.append(f"GET {url} -> {status}: {text[:120]}")
            for method, template in writes:
                url = template.replace("{t}", target)
                status, text = _send(srv, method, url, marker.encode())
                sent += 1
                if status >= 500:
                    problems.append(f"{method} {url} -> {status}: {text[:120]}")
    # The same names in JSON bodies: a version's artifact path, a logged artifact's path.
    for target in _targets("canary.txt"):
        for url, body in (
            ("/api/v1/models/credit/versions", {"run_id": run_id, "artifact_path": target}),
            (
                "/api/2.0/mlflow/model-versions/create",
                {"name": "credit", "source": f"runs:/{run_id}/{target}", "run_id": run_id},
            ),
            (
                "/api/2.0/mlflow/runs/log-inputs",
                {
                    "run_id": run_id,
                    "datasets": [
                        {
                            "dataset": {
                                "name": "d",
                                "digest": "x",
                                "source_type": "local",
                                "source": target,
                            }
                        }
                    ],
                },
            ),
        ):
            status, text = _send(srv, "POST", url, json.dumps(body).encode())
            sent += 1
            if status >= 500 or CANARY in text or PASSWD in text:
                problems.append(f"POST {url} {target!r} -> {status}: {text[:120]}")
    print(f"traversal: {sent} requests, {len(problems)} problems")
    assert sent > 2_000
    assert not problems, "\n".join(problems[:20])
    assert (tmp_path / "canary.txt").read_text() == CANARY
    assert _outside(tmp_path, store) == before, "a file appeared or changed outside the store"
    for name in os.listdir("/tmp"):
        assert marker not in name
    # What traversal names did reach the store were refused, not stored under another name.
    status, text = _send(srv, "GET", f"/api/v1/runs/{run_id}/artifacts")
    names = [a["name"] for a in json.loads(text)["artifacts"]]
    for name in names:
        for form in (name, unquote(name), unquote(unquote(name)), normalize("NFKC", name)):
            segments = form.replace("\\", "/").split("/")
            assert "." not in segments and ".." not in segments, name
            assert not form.startswith("/") and "\ufffd" not in form, name
    assert quote("ok.txt") in names
