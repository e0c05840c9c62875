"""The smaller findings: inline artifacts, token lifetimes, login throttling, hostile listings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from shipyard.bootstrap import local_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import AuthenticationError, InvalidInputError, StoreError
from shipyard.core.settings import Settings
from shipyard.remote.client import RestClient
from shipyard.remote.tracking import RestRunArtifacts
from tests.conftest import ServerProcess
from tests.integration.test_server_auth import AuthServer


def test_uploaded_html_is_served_as_a_download_never_inline(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        exp = client.post("/api/v1/experiments", json={"name": "x"}).json()
        run = client.post("/api/v1/runs", json={"experiment_id": exp["id"], "name": "r"}).json()
        page = b"<html><script>alert(document.cookie)</script></html>"
        client.put(
            f"/api/v1/runs/{run['id']}/artifacts/report.html",
            content=page,
            headers={"content-type": "text/html"},
        ).raise_for_status()
        answer = client.get(f"/api/v1/runs/{run['id']}/artifacts/report.html")
    assert answer.content == page
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in answer.headers["content-security-policy"]


def test_tokens_have_a_lifetime_and_a_maximum(tmp_path: Path) -> None:
    backend = local_backend(Settings(uri=str(tmp_path / "s")))
    identity = backend.governance.identity
    with acting_as("root"):
        identity.create_user("ana", "member")
        token, secret = identity.create_token("ana")
        assert token.expires_at is not None
        assert 89 * 86_400_000 < token.expires_at - token.created_at <= 90 * 86_400_000
        with pytest.raises(InvalidInputError, match="at most 365 days"):
            identity.create_token("ana", "forever", "400d")
        legacy, old_secret = identity.create_token("ana", "legacy", "30d")
    engine = sa.create_engine(backend.uri)
    with engine.begin() as conn:  # a token from before lifetimes were capped, two years old
        conn.execute(
            sa.text("UPDATE api_tokens SET expires_at = NULL, created_at = 1 WHERE id = :i"),
            {"i": legacy.id},
        )
    engine.dispose()
    assert identity.authenticate(secret).name == "ana"
    with pytest.raises(AuthenticationError, match="expired"):
        identity.authenticate(old_secret)
    backend.close()


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[AuthServer]:
    srv = AuthServer(tmp_path)
    yield srv
    srv.proc.stop()


def test_failed_logins_are_audited_and_throttled(auth_server: AuthServer) -> None:
    bad = {"Authorization": "Bearer shy_" + "x" * 43}
    with httpx.Client(base_url=auth_server.url) as client:
        codes = [client.get("/api/v1/experiments", headers=bad).status_code for _ in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        throttled = client.get("/api/v1/experiments", headers=bad)
        assert int(throttled.headers["retry-after"]) >= 1
        assert "too many failed" in throttled.json()["error"]
    # The whole address is throttled (as fail2ban would), so read the log from the store.
    backend = local_backend(Settings(uri=str(auth_server.home)))
    failed = [
        e
        for e in backend.governance.audit.events(obj="client:127.0.0.1")
        if e.action == "auth.failed"
    ]
    backend.close()
    assert [e.actor for e in failed] == ["anonymous"] * 10
    assert failed[-1].payload["throttled"] is True


class HostileServer:
    """Answers an artifact listing with names that climb out of any download folder."""

    def __init__(self, names: list[str]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(
                    {
                        "artifacts": [
                            {
                                "run_id": "run_x",
                                "name": n,
                                "digest": "0" * 64,
                                "size": 1,
                                "media_type": "text/plain",
                                "created_at": 1,
                            }
                            for n in names
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "name", ["model/../../escaped/x", "../escaped", "/etc/escaped", "model/..\\..\\x"]
)
def test_a_hostile_listing_cannot_steer_downloads_outside_their_folder(
    tmp_path: Path, name: str
) -> None:
    hostile = HostileServer(["model/MLmodel", name])
    try:
        artifacts = RestRunArtifacts(RestClient(hostile.url))
        with pytest.raises(StoreError, match="unsafe artifact name"):
            artifacts.list_artifacts("run_01m8j07665dv9xfct2x23tvv6b")
    finally:
        hostile.close()
    from shipyard.registry.packages import ModelPackages

    backend = local_backend(Settings(uri=str(tmp_path / "s")))
    dest = tmp_path / "download"
    dest.mkdir()
    with pytest.raises(InvalidInputError):
        ModelPackages(backend.tracking).download("run_x", "model", {name: "0" * 64}, dest)
    backend.close()
    assert not (tmp_path / "escaped").exists()
