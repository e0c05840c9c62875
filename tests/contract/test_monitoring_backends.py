"""Monitors and alerts give the same answers on SQLite, PostgreSQL and through a server with
token auth: windows, history, reference files, alerts that notify, retrain and resolve, and
notifications sent again. Through the server the window is evaluated there, where the
prediction log is; the retraining pipeline runs in the client, where its code is."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.bootstrap import Backend, local_backend
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.settings import Settings
from shipyard.monitoring.spec import parse_monitor
from shipyard.sdk.monitoring import retrainer
from tests.conftest import ServerProcess, issue_tokens
from tests.e2e.test_cli import cli
from tests.integration.test_alerts import Receiver, log_hours
from tests.integration.test_gates import FAIR, make_data

BASE = datetime(2026, 11, 22, tzinfo=UTC)
HOUR = timedelta(hours=1)
SHIFTS = [0.0, 0.0, 2.0, 2.0, 0.0]  # calm, calm, shifted, shifted, calm
SPEC: dict[str, Any] = {
    "name": "credit-watch",
    "deployment": "credit-live",
    "model": "models:/credit/1",
    "features": FAIR,
    "quality": {"min_rows": 100},
    "performance": {"metrics": {"roc_auc": {"min": 0.7}}, "min_labels": 100},
}


@dataclass
class Team:
    """One store seen through the SDK, and how a CLI or a second look reaches it."""

    kind: str
    backend: Backend
    env: dict[str, str]  # what points a CLI process at it
    predlog: Path
    server: ServerProcess | None = None
    server_settings: Settings | None = None  # the server's own store, looked at directly
    tokens: dict[str, str] | None = None


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def team(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Team]:
    """credit v1 registered with its training data, five hours of traffic and their labels."""
    predlog = tmp_path / "predictions"
    for key in [k for k in os.environ if k.startswith("SHIPYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.1")
    server = None
    server_settings = None
    tokens = None
    if request.param == "rest":
        home = tmp_path / "server"
        server_settings = Settings(uri=str(home), predlog=str(predlog))
        people = {"vic": "viewer", "alice": "member", "eve": "member"}
        tokens = issue_tokens(server_settings, people)
        server = ServerProcess(
            home,
            {
                "SHIPYARD_AUTH": "tokens",
                "SHIPYARD_PREDLOG": str(predlog),
                "SHIPYARD_WEBHOOK_ALLOW": "127.0.0.1",
            },
        )
        env = {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": tokens["alice"]}
    elif request.param == "postgres":
        env = {
            "SHIPYARD_URI": request.getfixturevalue("postgres_uri"),
            "SHIPYARD_ARTIFACTS": str(tmp_path / "blobs"),
            "SHIPYARD_AUDIT_ANCHOR": str(tmp_path / "anchor.json"),
            "SHIPYARD_PREDLOG": str(predlog),
        }
    else:
        env = {"SHIPYARD_URI": str(tmp_path / "store"), "SHIPYARD_PREDLOG": str(predlog)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shipyard.set_uri(None)
    backend = shipyard.sdk.context.current().get_backend()
    train = make_data(3000, 1)
    model = LogisticRegression().fit(train[FAIR], train["label"])
    shipyard.register_model("credit", model, train[FAIR][:5], training_data=train[FAIR])
    labels = log_hours(predlog, model, BASE, SHIFTS, seed=30)
    assert shipyard.log_feedback("credit-live", labels).accepted == len(labels)
    try:
        yield Team(request.param, backend, env, predlog, server, server_settings, tokens)
    finally:
        shipyard.set_uri(None)
        if server is not None:
            server.stop()


def _window(hour: int) -> tuple[datetime, datetime]:
    return BASE + hour * HOUR, BASE + (hour + 1) * HOUR


def test_windows_history_and_latest_answer_alike(team: Team) -> None:
    monitors = team.backend.monitors
    spec = parse_monitor(SPEC)
    results = [monitors.run(spec, *_window(h)) for h in range(3)]
    assert [r["status"] for r in results] == ["ok", "ok", "alert"]
    calm, shifted = results[0], results[2]
    assert calm["rows"] == 400 and calm["performance"]["labels"] == 400
    assert calm["performance"]["metrics"]["roc_auc"] > 0.7
    assert {"score_drift", "out_of_range"} <= {
        c["name"] for c in shifted["checks"] if c["status"] == "failed"
    }
    assert monitors.run(spec, *_window(0)) == calm  # a window re-run gives the same result
    history = monitors.history("credit-watch")
    assert [h["window_start"] for h in history] == [_window(h)[0].isoformat() for h in range(3)]
    assert monitors.history("credit-watch", limit=1) == history[-1:]
    assert [r["monitor"] for r in monitors.latest()] == ["credit-watch"]
    assert monitors.latest()[0]["window_start"] == shifted["window_start"]
    with pytest.raises(NotFoundError, match="no results yet"):
        monitors.history("never-ran")
    with pytest.raises(InvalidInputError, match="end after it starts"):
        monitors.run(spec, BASE, BASE)
    if team.server_settings is not None:
        # The server's answer is the store's: evaluated here, on the same store, it agrees.
        here = local_backend(team.server_settings)
        try:
            assert here.monitors.run(spec, *_window(2)) == shifted
        finally:
            here.close()


def test_a_reference_file_is_read_where_the_monitor_runs(team: Team, tmp_path: Path) -> None:
    reference = tmp_path / "reference.parquet"
    make_data(2000, 7)[FAIR].to_parquet(reference)
    spec = parse_monitor(
        {**SPEC, "name": "by-file", "reference": {"kind": "file", "path": str(reference)}}
    )
    monitors = team.backend.monitors
    calm, shifted = monitors.run(spec, *_window(0)), monitors.run(spec, *_window(2))
    assert calm["status"] == "ok" and shifted["status"] == "alert"
    assert "x0" in shifted["drift"]["drifted_columns"]
    if team.server_settings is not None:
        # Uploaded once as a blob, named by the stored result, so the orphan sweep keeps it.
        digest = calm["reference_blob"]
        here = local_backend(team.server_settings)
        try:
            assert here.blobs is not None and here.blobs.exists(digest)
            report = here.consistency.run(sweep=True, grace_seconds=0)
            assert report.missing == [] and here.blobs.exists(digest)
        finally:
            here.close()


def test_an_alert_notifies_retrains_in_the_client_and_resolves(team: Team) -> None:
    receiver = Receiver()
    try:
        backend = team.backend
        monitors = backend.monitors
        monitors.retrain = retrainer()
        spec = parse_monitor(
            {
                **SPEC,
                "quality": None,
                "performance": None,
                "alerts": [
                    {
                        "name": "drift",
                        "check": "drift",
                        "for": 2,
                        "severity": "critical",
                        "notify": ["hook"],
                        "retrain": "tests.resources.pipelines.training:training",
                    }
                ],
                "notifiers": {"hook": {"type": "webhook", "url": receiver.url, "retries": 1}},
            }
        )
        fired = [monitors.run(spec, *_window(h)).get("alerts", []) for h in range(5)]
        assert [len(f) for f in fired] == [0, 0, 0, 1, 1]
        assert fired[3][0]["status"] == "firing" and fired[4][0]["status"] == "resolved"
        run_id = fired[3][0]["pipeline_run"]
        assert run_id and run_id.startswith("prun_")
        assert backend.pipelines is not None
        assert backend.pipelines.store.get_pipeline_run(run_id).status.value == "COMPLETED"
        assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
        alerts = monitors.list_alerts("credit-watch")
        assert len(alerts) == 1 and alerts[0].status == "resolved"
        assert alerts[0].pipeline_run == run_id
        assert monitors.list_alerts(status="firing") == []
        actions = [e.action for e in backend.governance.audit.events(obj="monitor:credit-watch")]
        # In one transaction with the alert locally; reported after it through a server.
        assert sorted(actions) == ["alert.fired", "alert.resolved", "alert.retraining_started"]
        assert actions[-1] == "alert.resolved"
        edges = backend.pipelines.store.edges_touching([f"alert:{alerts[0].id}"])
        assert (f"alert:{alerts[0].id}", f"pipeline_run:{run_id}", "triggered") in edges
    finally:
        receiver.close()


def test_undelivered_notifications_are_kept_and_sent_again_by_the_cli(
    team: Team, tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        declared = {
            **SPEC,
            "name": "w2",
            "alerts": [{"name": "drift", "check": "drift", "notify": ["hook"]}],
            "notifiers": {"hook": {"type": "webhook", "url": receiver.url, "retries": 1}},
        }
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump(declared))
        receiver.mode = "fail"
        at = (_window(2)[0] + timedelta(minutes=30)).isoformat()
        ran = cli("monitor", "run", str(path), "--at", at, "--json", env=team.env)
        assert ran.returncode == 1, ran.stderr  # the window raised an alert
        assert json.loads(ran.stdout)["results"][0]["alerts"][0]["status"] == "firing"
        listed = cli("alerts", "list", "--monitor", "w2", "--json", env=team.env)
        assert listed.returncode == 0, listed.stderr
        (alert,) = json.loads(listed.stdout)["alerts"]
        assert alert["deliveries"][0]["delivered"] is False
        receiver.mode = "ok"
        sent = cli("alerts", "retry", alert["id"], "--monitor-spec", str(path), env=team.env)
        assert sent.returncode == 0, sent.stderr
        assert "every notification delivered" in sent.stdout
        assert team.backend.monitors.list_alerts("w2")[0].deliveries[0]["delivered"] is True
        shown = cli("monitor", "history", "w2", "--json", env=team.env)
        assert [r["status"] for r in json.loads(shown.stdout)["results"]] == ["alert"]
        missing = cli("alerts", "retry", "alrt_nope", "--monitor-spec", str(path), env=team.env)
        assert missing.returncode == 2 and "does not exist" in missing.stderr
    finally:
        receiver.close()


@pytest.mark.parametrize("team", ["rest"], indirect=True)
def test_the_server_keeps_its_files_and_its_rules(team: Team, tmp_path: Path) -> None:
    assert team.server is not None and team.tokens is not None
    url = f"{team.server.url}/api/v1/monitors/credit-watch/runs"

    def call(who: str, body: dict[str, Any], target: str = url) -> httpx.Response:
        assert team.tokens is not None
        auth = {"Authorization": f"Bearer {team.tokens[who]}"}
        return httpx.post(target, json=body, headers=auth, timeout=60)

    start, end = (t.isoformat() for t in _window(0))
    window = {"start": start, "end": end}
    secret = tmp_path / "server-secret.csv"
    secret.write_text("x0,x1\n1,2\n")
    by_path = {**SPEC, "reference": {"kind": "file", "path": str(secret)}}
    refused = call("alice", {"spec": by_path, **window})
    assert refused.status_code == 400 and "never read" in refused.json()["error"]
    unknown_blob = {**SPEC, "reference": {"kind": "file", "path": "blob:" + "0" * 64}}
    assert call("alice", {"spec": unknown_blob, **window}).status_code == 400
    assert call("vic", {"spec": SPEC, **window}).status_code == 403  # a viewer only reads
    other = call("alice", {"spec": {**SPEC, "name": "other"}, **window})
    assert other.status_code == 400 and "not 'credit-watch'" in other.json()["error"]
    bad = call("alice", {"spec": {**SPEC, "window": {"every": "often"}}, **window})
    assert bad.status_code == 400 and "window.every" in bad.json()["error"]
    assert call("alice", {"spec": SPEC, "start": start}).status_code == 400
    # Retraining is reported against a firing alert, with the reporter's own pipeline run.
    spec = parse_monitor(
        {**SPEC, "name": "w3", "alerts": [{"name": "drift", "check": "drift"}], "quality": None}
    )
    monitors = team.backend.monitors
    alert_id = monitors.run(spec, *_window(2))["alerts"][0]["id"]
    from tests.resources.pipelines.training import training

    record = shipyard.sdk.pipelines.runner().run(training, {})
    link = f"{team.server.url}/api/v1/alerts/{alert_id}/retraining"
    body = {"pipeline": "tests.resources.pipelines.training:training", "pipeline_run": record.id}
    assert call("eve", body, link).status_code == 403  # not eve's run
    assert call("alice", body, link).status_code == 200
    assert monitors.list_alerts("w3")[0].pipeline_run == record.id
    gone = f"{team.server.url}/api/v1/alerts/alrt_01m8j07665dv9xfct2x23tvv6b/retraining"
    assert call("alice", body, gone).status_code == 404
