"""Attacks by authenticated users on a live server: each one must be refused, and audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import NotFoundError, PermissionDeniedError
from tests.integration.test_gates import FAIR, make_data
from tests.integration.test_server_auth import AuthServer

GOOD = {"label": "label", "checks": [{"metric": "roc_auc", "min": 0.6}]}
IMPOSSIBLE = {"label": "label", "checks": [{"metric": "roc_auc", "min": 0.9999}]}


class Team:
    """A server with auth and one more member (carol) to play the attacker."""

    def __init__(self, home: Path) -> None:
        self.srv = AuthServer(home)
        self.url = self.srv.url
        admin = self.srv.headers("admin")
        httpx.post(
            f"{self.url}/api/v1/users", json={"name": "carol", "role": "member"}, headers=admin
        ).raise_for_status()
        answer = httpx.post(f"{self.url}/api/v1/tokens", json={"user": "carol"}, headers=admin)
        self.srv.tokens["carol"] = answer.json()["token"]

    def headers(self, who: str) -> dict[str, str]:
        return self.srv.headers(who)

    def call(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers=self.headers(who), timeout=30, **kw
        )


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    t = Team(tmp_path)
    yield t
    t.srv.proc.stop()


@pytest.fixture
def act(team: Team, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def as_role(role: str) -> Any:
        monkeypatch.setenv("SHIPYARD_TOKEN", team.srv.tokens[role])
        shipyard.set_uri(team.url)
        return shipyard.sdk.context.current().get_backend()

    yield as_role
    shipyard.set_uri(None)


def _register(act: Any, role: str = "member") -> shipyard.ModelVersion:
    act(role)
    data = make_data(1500, 8)
    model = LogisticRegression().fit(data[FAIR], data["label"])
    return shipyard.register_model("credit", model, data[FAIR][:5], training_data=data[FAIR])


def test_a_viewer_may_search_runs_which_only_reads(team: Team) -> None:
    answer = team.call("viewer", "POST", "/api/v1/runs/search", json={"experiment_ids": []})
    assert answer.status_code == 200, answer.text
    assert (
        team.call("viewer", "POST", "/api/v1/runs", json={"experiment_id": "x"}).status_code == 403
    )


def test_the_trainer_tag_cannot_be_rewritten_to_dodge_separation_of_duties(
    team: Team, act: Any
) -> None:
    mv = _register(act, "approver")  # bob trains and registers
    answer = team.call(
        "approver",
        "POST",
        f"/api/v1/runs/{mv.run_id}/batch",
        json={"tags": {"shipyard.user": "alice"}},
    )
    assert answer.status_code == 403 and "shipyard.user" in answer.json()["error"]
    assert shipyard.get_run(mv.run_id).tags["shipyard.user"] == "bob"
    with pytest.raises(PermissionDeniedError, match=r"shipyard\.user"):
        shipyard.sdk.context.current().get_backend().tracking.log_batch(
            mv.run_id, tags={"shipyard.user": "alice"}
        )


def test_a_posted_gate_report_never_counts_for_promotion(team: Team, act: Any) -> None:
    mv = _register(act)
    backend = act("member")
    failed = backend.gates.evaluate("credit", mv.version, IMPOSSIBLE, make_data(500, 9))
    assert not failed.passed and failed.verified  # the server computed it
    forged = failed.to_dict() | {"passed": True, "verified": True}
    forged["checks"] = [c | {"status": "passed"} for c in forged["checks"]]
    forged["id"] = "gate_01m8j07665dv9xfct2x23tvv6c"
    answer = team.call(
        "member", "POST", f"/api/v1/models/credit/versions/{mv.version}/gate-reports", json=forged
    )
    assert answer.status_code == 201 and answer.json()["verified"] is False
    with pytest.raises(PermissionDeniedError, match="failed"):
        backend.governance.approvals.request("credit", mv.version)
    copied = team.call(
        "member",
        "POST",
        f"/api/v1/models/credit/versions/{mv.version}/gate-reports",
        json=forged | {"id": "gate_01m8j07665dv9xfct2x23tvv6d", "version": 99},
    )
    assert copied.status_code == 400
    passed = backend.gates.evaluate("credit", mv.version, GOOD, make_data(500, 9))
    assert passed.verified and passed.passed
    assert backend.governance.approvals.request("credit", mv.version).gate_report == passed.id


def test_only_an_unverified_report_is_not_enough(tmp_path: Path, team: Team, act: Any) -> None:
    mv = _register(act)
    report = act("member").gates.evaluate("credit", mv.version, GOOD, make_data(500, 9)).to_dict()
    second = _register(act)
    posted = report | {"version": second.version, "id": "gate_01m8j07665dv9xfct2x23tvv6e"}
    assert (
        team.call(
            "member",
            "POST",
            f"/api/v1/models/credit/versions/{second.version}/gate-reports",
            json=posted,
        ).status_code
        == 201
    )
    with pytest.raises(NotFoundError, match="posted reports do not count"):
        act("member").governance.approvals.request("credit", second.version)


def test_nobody_but_the_owner_or_an_admin_changes_a_run(team: Team, act: Any) -> None:
    mv = _register(act)  # alice's
    run = mv.run_id
    for method, path, kw in (
        ("PUT", f"/api/v1/runs/{run}/artifacts/model/model.skops", {"content": b"junk"}),
        ("PATCH", f"/api/v1/runs/{run}", {"json": {"status": "KILLED"}}),
        ("DELETE", f"/api/v1/runs/{run}", {}),
        ("POST", f"/api/v1/runs/{run}/batch", {"json": {"params": {"x": "1"}}}),
        (
            "POST",
            f"/api/v1/runs/{run}/edges",
            {"json": {"edges": [["dataset:forged@sha256:" + "0" * 64, f"run:{run}", "input"]]}},
        ),
    ):
        answer = team.call("carol", method, path, **kw)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "only they or an admin" in answer.json()["error"]
    # The owner adds edges of this run only.
    stray = {"edges": [["dataset:x@sha256:" + "0" * 64, "run:run_" + "0" * 26, "input"]]}
    answer = team.call("member", "POST", f"/api/v1/runs/{run}/edges", json=stray)
    assert answer.status_code == 403 and "touches none" in answer.json()["error"]
    # Even the owner (or an admin) cannot break what a registered version is built from.
    for who in ("member", "admin"):
        overwrite = team.call(
            who, "PUT", f"/api/v1/runs/{run}/artifacts/model/model.skops", content=b"junk"
        )
        assert overwrite.status_code == 409, overwrite.text
        assert team.call(who, "DELETE", f"/api/v1/runs/{run}").status_code == 409
    assert (
        team.call("member", "PATCH", f"/api/v1/runs/{run}", json={"status": "KILLED"}).status_code
        == 409
    )
    act("member")
    assert shipyard.load_model(f"models:/credit/{mv.version}") is not None
    # An unregistered run of alice's may be deleted by her; the deletion is audited.
    with shipyard.start_run(experiment="scratch") as other:
        shipyard.log_param("x", 1)
    assert team.call("member", "DELETE", f"/api/v1/runs/{other.id}").status_code == 204
    events = team.call("admin", "GET", "/api/v1/audit/events", params={"object": f"run:{other.id}"})
    assert [e["action"] for e in events.json()["events"]][-1] == "run.deleted"


def test_champion_moves_by_hand_only_as_an_admins_audited_break_glass(team: Team, act: Any) -> None:
    mv = _register(act)
    body = {"version": mv.version}
    denied = team.call("approver", "PUT", "/api/v1/models/credit/aliases/champion", json=body)
    assert denied.status_code == 403 and "break-glass" in denied.json()["error"]
    assert (
        team.call(
            "approver", "PUT", "/api/v1/models/credit/aliases/challenger", json=body
        ).status_code
        == 200
    )
    no_reason = team.call("admin", "PUT", "/api/v1/models/credit/aliases/champion", json=body)
    assert no_reason.status_code == 400
    ok = team.call(
        "admin",
        "PUT",
        "/api/v1/models/credit/aliases/champion",
        json=body | {"reason": "incident 42: roll forward"},
    )
    assert ok.status_code == 200
    assert (
        team.call("approver", "DELETE", "/api/v1/models/credit/aliases/champion").status_code == 403
    )
    events = team.call(
        "admin", "GET", "/api/v1/audit/events", params={"object": "models:/credit@champion"}
    )
    actions = [(e["action"], e["actor"]) for e in events.json()["events"]]
    assert ("alias.break_glass", "root") in actions


def test_clients_report_deployment_events_but_cannot_forge_others(team: Team, act: Any) -> None:
    backend = act("member")
    backend.governance.audit.record("deployment.started", "deployment:fraud", {"versions": [1]})
    forged = team.call(
        "member",
        "POST",
        "/api/v1/audit/events",
        json={"action": "promotion.approved", "object": "models:/credit/1", "payload": {}},
    )
    assert forged.status_code == 400 and "clients may report only" in forged.json()["error"]
    events = team.call(
        "admin", "GET", "/api/v1/audit/events", params={"object": "deployment:fraud"}
    )
    recorded = events.json()["events"]
    assert [(e["action"], e["actor"]) for e in recorded] == [("deployment.started", "alice")]
    assert team.call("admin", "GET", "/api/v1/audit/verify").json()["ok"] is True


def test_pipelines_through_the_server_belong_to_who_ran_them(
    team: Team, act: Any, tmp_path: Path
) -> None:
    """Another member's cache entries are misses (nobody plants outputs a colleague's
    pipeline would load), and nobody but the owner writes into a pipeline run."""
    from tests.integration.test_pipelines import load_flow

    flow = load_flow(tmp_path)
    act("member")
    alices = flow.training.run(n=100)
    act("carol")
    carols = flow.training.run(n=100)
    assert {s.status.value for s in carols.record.steps} == {"COMPLETED"}
    assert {s.status.value for s in flow.training.run(n=100).record.steps} == {"CACHED"}

    step = alices.record.steps[0]
    finish = {"status": "FAILED", "ended_at": 1}
    forged = {
        "record": {
            "id": step.id,
            "pipeline_run_id": alices.id,
            "step": step.step,
            "status": "FAILED",
            "cache_key": None,
            "run_id": None,
            "started_at": 1,
            "ended_at": 2,
        },
        "position": 0,
    }
    edge = {"edges": [[f"pipeline_run:{alices.id}", "artifact:" + "0" * 64, "input:x"]]}
    for method, path, body in (
        ("POST", f"/api/v1/pipeline-runs/{alices.id}/finish", finish),
        ("PUT", f"/api/v1/pipeline-runs/{alices.id}/steps/{step.id}", forged),
        ("POST", f"/api/v1/pipeline-runs/{alices.id}/edges", edge),
    ):
        answer = team.call("carol", method, path, json=body)
        assert answer.status_code == 403, (path, answer.text)
    kept = team.call("viewer", "GET", f"/api/v1/pipeline-runs/{alices.id}").json()
    assert kept["status"] == "COMPLETED"
    assert [s["status"] for s in kept["steps"]] == ["COMPLETED"] * len(alices.record.steps)
    viewer_run = {**kept, "id": "prun_" + "0" * 26, "steps": []}
    assert team.call("viewer", "POST", "/api/v1/pipeline-runs", json=viewer_run).status_code == 403
