"""Token auth on a live server: who may call which route, and the promotion flow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.bootstrap import local_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import AuthenticationError, PermissionDeniedError
from shipyard.core.settings import Settings
from shipyard.governance.models import Role
from shipyard.server.app import create_app, mounted_routes
from shipyard.server.auth import ELEVATED, PUBLIC, required_role
from tests.conftest import ServerProcess
from tests.integration.test_gates import FAIR, make_data

ROLES = ("viewer", "member", "approver", "admin")


class AuthServer:
    """A server with --auth tokens, and one token per role (plus revoked and expired ones)."""

    def __init__(self, home: Path) -> None:
        store = home / "store"
        self.home = store
        backend = local_backend(Settings(uri=str(store)))
        identity = backend.governance.identity
        self.tokens: dict[str, str] = {}
        with acting_as("bootstrap"):
            for name, role in (
                ("vic", "viewer"),
                ("alice", "member"),
                ("bob", "approver"),
                ("root", "admin"),
            ):
                identity.create_user(name, role)
                self.tokens[role] = identity.create_token(name, "test")[1]
            revoked, self.tokens["revoked"] = identity.create_token("bob", "old")
            identity.revoke_token(revoked.id)
            expired, self.tokens["expired"] = identity.create_token("bob", "short", "1m")
        engine = sa.create_engine(backend.uri)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE api_tokens SET expires_at = 1 WHERE id = :i"), {"i": expired.id}
            )
        engine.dispose()
        self.routes = mounted_routes(create_app(backend, Settings(uri=str(store))))
        backend.close()
        self.proc = ServerProcess(store, {"SHIPYARD_AUTH": "tokens"})
        self.url = self.proc.url

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[AuthServer]:
    srv = AuthServer(tmp_path)
    yield srv
    srv.proc.stop()


FILL = {
    "name": "credit",
    "version": "1",
    "alias": "champion",
    "key": "k",
    "run_id": "run_01m8j07665dv9xfct2x23tvv6b",
    "experiment_id": "exp_01m8j07665dv9xfct2x23tvv6b",
    "token_id": "tok_01m8j07665dv9xfct2x23tvv6b",
    "report_id": "gate_01m8j07665dv9xfct2x23tvv6b",
}


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: FILL.get(m.group(1), "a.txt"), path)


def test_every_route_of_the_app_checks_the_callers_role(auth_server: AuthServer) -> None:
    assert len(auth_server.routes) > 40
    sensitive = {
        ("PUT", "/api/v1/models/{name}/aliases/{alias}"),
        ("DELETE", "/api/v1/models/{name}/versions/{version}"),
        ("POST", "/api/v1/models/{name}/versions/{version}/approve"),
    }
    assert all(ELEVATED[k] is Role.APPROVER for k in sensitive)
    checked = 0
    with httpx.Client(base_url=auth_server.url, timeout=10) as client:
        for route in auth_server.routes:
            for method in sorted(route.methods):
                url = _url(route.path)
                page = not route.path.startswith(("/api/", "/health", "/metrics"))
                if (method, route.path) in PUBLIC:
                    # The login form itself is open; a post without a token is refused.
                    expected = 401 if (method, route.path) == ("POST", "/login") else 200
                    assert client.request(method, url).status_code == expected
                    continue
                needed = required_role(method, route.path)
                anonymous = client.request(method, url, json={})
                if page and method == "GET":  # a browser without a session goes to sign in
                    assert anonymous.status_code == 303, (route.path, anonymous.text)
                    assert anonymous.headers["location"].startswith("/login?next=")
                    continue
                assert anonymous.status_code == 401, (method, route.path, anonymous.text)
                if route.path.startswith("/api/2.0/"):  # MLflow's dialect, MLflow's shape
                    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
                elif not page and method != "HEAD":  # a HEAD answer has no body
                    assert anonymous.json()["type"] == "AuthenticationError"
                for role in ROLES:
                    if Role(role).allows(needed):
                        continue
                    denied = client.request(method, url, json={}, headers=auth_server.headers(role))
                    assert denied.status_code == 403, (role, method, route.path, denied.text)
                    checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        (None, "authentication required"),
        ("shy_" + "x" * 43, "invalid token"),
        ("not-even-a-token", "invalid token"),
        ("revoked", "token revoked"),
        ("expired", "token expired"),
    ],
)
def test_missing_forged_revoked_and_expired_tokens_get_401(
    auth_server: AuthServer, token: str | None, needle: str
) -> None:
    secret = auth_server.tokens.get(token or "", token)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    answer = httpx.get(f"{auth_server.url}/api/v1/experiments", headers=headers)
    assert answer.status_code == 401 and needle in answer.json()["error"]


def test_promotion_through_the_server_keeps_duties_apart(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def as_role(role: str) -> None:
        monkeypatch.setenv("SHIPYARD_TOKEN", auth_server.tokens[role])
        monkeypatch.setenv("SHIPYARD_USER", "somebody-else")  # ignored: the token decides
        shipyard.set_uri(auth_server.url)

    data = make_data(1500, 8)
    as_role("member")
    model = LogisticRegression().fit(data[FAIR], data["label"])
    mv = shipyard.register_model("credit", model, data[FAIR][:5], training_data=data[FAIR])
    assert mv.created_by == "alice"
    run = shipyard.get_run(mv.run_id)
    assert run.tags["shipyard.user"] == "alice"
    with pytest.raises(PermissionDeniedError, match="needs approver"):
        shipyard.set_alias("credit", "champion", 1, reason="test setup")
    report = shipyard.check_gates(
        "credit",
        1,
        {"label": "label", "checks": [{"metric": "roc_auc", "min": 0.6}]},
        make_data(500, 9),
    )
    assert report.passed and report.created_by == "alice"
    gov = shipyard.sdk.context.current().get_backend().governance
    gov.approvals.request("credit", 1, note="please")
    with pytest.raises(PermissionDeniedError, match="needs approver"):
        gov.approvals.approve("credit", 1)
    as_role("approver")
    gov = shipyard.sdk.context.current().get_backend().governance
    done = gov.approvals.approve("credit", 1, note="ok")
    assert done.status == "approved"
    assert shipyard.model_registry().get_model("credit").aliases == {"champion": 1}
    events = gov.audit.events(obj="models:/credit")
    actors = {e.action: e.actor for e in events}
    assert actors["model.registered"] == "alice" and actors["model.promoted"] == "bob"
    assert gov.audit.verify().ok
    as_role("viewer")
    with pytest.raises(PermissionDeniedError):
        shipyard.register_model("credit", model, data[FAIR][:5])
    monkeypatch.setenv("SHIPYARD_TOKEN", "shy_forged")
    shipyard.set_uri(auth_server.url)
    with pytest.raises(AuthenticationError, match="invalid token"):
        shipyard.list_models()
    shipyard.set_uri(None)
