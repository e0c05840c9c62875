"""`shipyard users|tokens|audit` and the promotion commands, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.actor import acting_as
from shipyard.core.settings import Settings
from tests.conftest import ServerProcess, issue_tokens
from tests.e2e.test_cli import cli
from tests.integration.test_gates import FAIR, make_data

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "store"
    shipyard.set_uri(str(home))
    data = make_data(1200, 11)
    with acting_as("alice"):
        model = LogisticRegression().fit(data[FAIR], data["label"])
        shipyard.register_model("credit", model, data[FAIR][:5], training_data=data[FAIR])
    shipyard.set_uri(None)
    make_data(600, 12).to_parquet(tmp_path / "eval.parquet")
    (tmp_path / "gates.yaml").write_text(
        "label: label\nchecks:\n  - metric: roc_auc\n    min: 0.6\n"
    )
    return {"SHIPYARD_URI": str(home)}


def test_users_tokens_and_audit(env: dict[str, str], tmp_path: Path) -> None:
    made = cli("users", "create", "root", "--role", "admin", "--json", env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["role"] == "admin"
    dup = cli("users", "create", "root", "--role", "admin", env=env)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    bad = cli("users", "create", "x", "--role", "god", env=env)
    assert bad.returncode == 2 and "role must be one of" in bad.stderr
    token = json.loads(
        cli("tokens", "create", "root", "--expires", "30d", "--json", env=env).stdout
    )
    assert token["user"] == "root" and token["token"].startswith("shy_")
    assert len(token["token"]) >= 4 + 43  # 256 random bits, URL-safe base64
    listed = cli("tokens", "list", "--json", env=env).stdout
    assert token["token"] not in listed and token["id"] in listed
    assert cli("tokens", "revoke", token["id"], env=env).returncode == 0
    assert (
        "duration must look like 30d"
        in cli("tokens", "create", "root", "--expires", "soon", env=env).stderr
    )

    verified = cli("audit", "verify", "--json", env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    events = json.loads(cli("audit", "list", "--json", "--since", "1d", env=env).stdout)["events"]
    assert {
        "run.created",
        "model.registered",
        "user.created",
        "token.created",
        "token.revoked",
    } <= {e["action"] for e in events}
    assert all("shy_" not in json.dumps(e) for e in events)  # secrets never logged
    out = tmp_path / "audit.jsonl"
    assert (
        cli("audit", "export", "-o", str(out), "--object", "models:/credit", env=env).returncode
        == 0
    )
    assert [json.loads(line)["action"] for line in out.read_text().splitlines()] == [
        "model.registered"
    ]

    engine = sa.create_engine(f"sqlite:///{Path(env['SHIPYARD_URI']) / 'shipyard.db'}")
    with engine.begin() as conn:
        # The store's owner can drop the append-only trigger; the chain still catches it.
        conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    broken = cli("audit", "verify", env=env)
    assert broken.returncode == 1 and "broken at event 2" in broken.stdout


@pytest.fixture(params=["local", "rest"])
def people(
    request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, dict[str, str]]]:
    """How alice and bob (approvers both, so separation of duties is what stops alice
    approving her own request) and an admin reach the store of ``env``: as the local user,
    or through a token-auth server with their own tokens."""
    if request.param == "local":
        yield {
            "alice": {**env, "SHIPYARD_USER": "alice"},
            "bob": {**env, "SHIPYARD_USER": "bob"},
            "admin": env,
        }
        return
    home = Path(env["SHIPYARD_URI"])
    people = {"alice": "approver", "bob": "approver", "root": "admin"}
    tokens = issue_tokens(Settings(uri=str(home)), people)
    server = ServerProcess(home, {"SHIPYARD_AUTH": "tokens"})
    try:
        yield {
            who: {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": tokens[name]}
            for who, name in (("alice", "alice"), ("bob", "bob"), ("admin", "root"))
        }
    finally:
        server.stop()


def test_promotion_commands(people: dict[str, dict[str, str]], tmp_path: Path) -> None:
    env, alice, bob = people["admin"], people["alice"], people["bob"]
    gate = (
        "gate",
        "check",
        "credit",
        "1",
        "--policy",
        str(tmp_path / "gates.yaml"),
        "--data",
        str(tmp_path / "eval.parquet"),
    )
    assert cli(*gate, env=env).returncode == 0
    asked = cli("models", "request-promotion", "credit", "1", "--note", "ready", env=alice)
    assert asked.returncode == 0, asked.stderr
    own = cli("models", "approve", "credit", "1", env=alice)
    assert own.returncode == 2 and "separation of duties" in own.stderr
    done = cli("models", "approve", "credit", "1", "--note", "ok", "--json", env=bob)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "approved"
    shown = json.loads(cli("models", "show", "credit", "--json", env=env).stdout)
    assert shown["aliases"] == {"champion": 1}
    again = cli("models", "rollback", "credit", env=bob)
    assert again.returncode == 2 and "no earlier champion" in again.stderr
    fields = cli(
        "models",
        "set",
        "credit",
        "--use-case",
        "credit_scoring",
        "--risk-tier",
        "high",
        "--approvals",
        "2",
        "--json",
        env=env,
    )
    assert json.loads(fields.stdout)["risk_tier"] == "high"
    assert cli("models", "set", "credit", "--risk-tier", "huge", env=env).returncode == 2
    table = cli("models", "requests", "credit", env=env).stdout
    assert "approved" in table and "bob: approve" in table

    page = tmp_path / "dossier.html"
    made = cli("models", "dossier", "credit", "1", "-o", str(page), env=bob)
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    for needle in (
        "Model dossier: credit v1",
        "credit_scoring",
        "high-risk under the EU AI Act",
        "PASSED",
        "bob",
        "trained_in",
        "promotion.approved",
        "verified",
    ):
        assert needle in html, needle
    assert "<script" not in html
    events = json.loads(
        cli("audit", "list", "--json", "--object", "models:/credit/1", env=env).stdout
    )["events"]
    assert events[-1]["action"] == "dossier.archived" and events[-1]["actor"] == "bob"
