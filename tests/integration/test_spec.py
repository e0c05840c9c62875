"""Plan, apply, drift and export against a real store (SQLite and PostgreSQL), and the CLI's
exit codes as CI uses them."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.bootstrap import Backend, local_backend, rest_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.core.roles import Role
from shipyard.core.settings import Settings
from shipyard.spec.loader import dump_spec, parse_spec
from tests.conftest import TokenServer, issue_tokens, store_env
from tests.e2e.test_cli import cli
from tests.integration.test_alerts import Receiver

HEAD = "apiVersion: shipyard.dev/v1\n"


def doc(kind: str, name: str, spec: str) -> str:
    return f"{HEAD}kind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n"


SPEC = "---\n".join(
    [
        doc("Experiment", "fraud", "{tags: {team: risk}}"),
        doc(
            "Model",
            "fraud",
            "{owner: risk-team, use_case: fraud_detection, risk_tier: high, "
            "approvals_required: 2, allowed_estimators: [lightgbm, logistic_regression]}",
        ),
        doc("RoleBinding", "alice", "{role: approver}"),
        doc("RoleBinding", "bob", "{role: member}"),
        doc(
            "Pipeline",
            "nightly",
            '{entry: "flows:training", schedule: "0 3 * * *", params: {n: 4}, executor: processes}',
        ),
        doc(
            "GatePolicy", "fraud-gates", "{label: is_fraud, checks: [{metric: roc_auc, min: 0.85}]}"
        ),
        doc("Deployment", "fraud", '{model: "models:/fraud@champion", workers: 2, threshold: 0.4}'),
        doc("Notifier", "ops", '{type: webhook, url: "${OPS_WEBHOOK}", format: slack}'),
        doc(
            "Monitor",
            "fraud-daily",
            "{deployment: fraud, model: models:/fraud@champion, window: {every: 1d}, "
            "drift: {method: psi, drift_share: 0.3}}",
        ),
        doc("AlertRule", "drift", "{monitor: fraud-daily, check: drift, for: 2, notify: [ops]}"),
    ]
)


#: SPEC with two fields changed in two objects: a concurrent apply must not mix them.
OTHER = SPEC.replace("workers: 2", "workers: 5").replace("role: member", "role: viewer")


def apply_at_once(jobs: list[tuple[Backend, list[Any]]]) -> list[BaseException]:
    """Apply each spec through its backend, all at the same time; what failed."""
    failures: list[BaseException] = []

    def run(backend: Backend, docs: list[Any]) -> None:
        try:
            backend.spec.apply(docs)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return failures


def test_apply_then_plan_is_empty_and_the_objects_are_live(store_backend: Backend) -> None:
    spec = store_backend.spec
    docs = parse_spec(SPEC)
    first = spec.plan(docs)
    assert first.count("create") == 10 and not first.problems
    done = spec.apply(docs)
    assert done.count("create") == 10
    assert spec.plan(docs).changes == [] and spec.plan(docs).unchanged == 10
    model = store_backend.registry.get_model("fraud")
    assert (model.owner, model.risk_tier, model.approvals_required) == ("risk-team", "high", 2)
    users = {u.name: u.role.value for u in store_backend.governance.identity.list_users()}
    assert users == {"alice": "approver", "bob": "member"}
    assert store_backend.pipelines is not None
    nightly = store_backend.pipelines.schedules.get_schedule("nightly")
    assert (nightly.cron, nightly.executor, nightly.params) == ("0 3 * * *", "processes", {"n": 4})
    assert store_backend.tracking.get_experiment("fraud").tags == {"team": "risk"}
    actions = [e.action for e in store_backend.governance.audit.events(action="spec.")]
    assert actions.count("spec.created") == 10 and actions[-1] == "spec.applied"
    again = spec.apply(docs)  # idempotent: nothing to do, nothing recorded but the apply
    assert again.changes == []


def test_a_changed_spec_plans_field_by_field_and_prunes_only_what_apply_made(
    store_backend: Backend,
) -> None:
    spec = store_backend.spec
    spec.apply(parse_spec(SPEC))
    edited = SPEC.replace("workers: 2", "workers: 3").replace(
        "drift_share: 0.3", "drift_share: 0.4"
    )
    edited = "---\n".join(p for p in edited.split("---\n") if "kind: Notifier" not in p)
    edited = edited.replace(", notify: [ops]", "")
    plan = spec.plan(parse_spec(edited), prune=True)
    changes = {(c.action, c.kind, c.name): [f.path for f in c.fields] for c in plan.changes}
    assert changes == {
        ("update", "Deployment", "fraud"): ["workers"],
        ("update", "Monitor", "fraud-daily"): ["drift.drift_share"],
        ("update", "AlertRule", "drift"): ["notify"],
        ("delete", "Notifier", "ops"): [
            "format",
            "port",
            "retries",
            "timeout",
            "to",
            "type",
            "url",
        ],
    }
    # Models and experiments are never deleted, whatever the spec says.
    bare = "---\n".join(p for p in edited.split("---\n") if "kind: Model" not in p)
    assert ("Model", "fraud") in spec.plan(parse_spec(bare), prune=True).kept
    spec.apply(parse_spec(edited), prune=True)
    assert spec.plan(parse_spec(edited), prune=True).changes == []
    assert ("Notifier", "ops") not in spec.live()
    # A user made by hand is drift, never pruned.
    store_backend.governance.identity.create_user("mallory", "admin")
    assert ("RoleBinding", "mallory") in spec.plan(parse_spec(edited), prune=True).unmanaged


def test_drift_names_what_changed_outside_the_spec_who_and_when(store_backend: Backend) -> None:
    spec = store_backend.spec
    spec.apply(parse_spec(SPEC))
    assert spec.drift() == []
    with acting_as("root"):
        store_backend.governance.identity.set_role("bob", "admin")  # a role granted by hand
        store_backend.governance.identity.create_user("eve", "viewer")
    with acting_as("carol"):
        spec.edit("Monitor", "fraud-daily", {"drift.drift_share": 0.6})  # a threshold edited
        store_backend.registry.set_governance("fraud", risk_tier="medium")
    assert store_backend.pipelines is not None
    store_backend.pipelines.schedules.delete_schedule("nightly")
    found = {(d.kind, d.name): d for d in spec.drift()}
    assert set(found) == {
        ("RoleBinding", "bob"),
        ("RoleBinding", "eve"),
        ("Monitor", "fraud-daily"),
        ("Model", "fraud"),
        ("Pipeline", "nightly"),
    }
    bob = found[("RoleBinding", "bob")]
    assert bob.change == "changed" and bob.by == ["root"] and bob.actions == ["user.role_changed"]
    assert [(f.path, f.old, f.new) for f in bob.fields] == [("role", "member", "admin")]
    monitor = found[("Monitor", "fraud-daily")]
    assert monitor.by == ["carol"] and monitor.at is not None
    assert found[("Model", "fraud")].by == ["carol"]
    assert found[("RoleBinding", "eve")].change == "created"
    assert found[("Pipeline", "nightly")].change == "deleted"
    # Applying the spec again puts it back; eve, made by hand, stays until someone decides.
    spec.apply(parse_spec(SPEC))
    assert [(d.kind, d.name) for d in spec.drift()] == [("RoleBinding", "eve")]


def test_apply_is_all_or_nothing(store_backend: Backend) -> None:
    spec = store_backend.spec
    # The registry refuses this use case only when apply reaches the model: by then the
    # role bindings and the experiment were written, and must be rolled back.
    broken = SPEC.replace("use_case: fraud_detection", "use_case: /fraud")
    with pytest.raises(InvalidInputError, match="use case"):
        spec.apply(parse_spec(broken))
    assert spec.live() == {}
    assert store_backend.governance.identity.list_users() == []
    assert store_backend.governance.audit.events(action="spec.") == []
    assert store_backend.governance.audit.verify().ok


def test_only_an_admin_applies(store_backend: Backend) -> None:
    with acting_as("bob", Role.APPROVER), pytest.raises(PermissionDeniedError, match="admin"):
        store_backend.spec.apply(parse_spec(SPEC))
    assert store_backend.spec.live() == {}


def test_export_then_apply_on_an_empty_store_gives_the_same_document(
    store_backend: Backend, store_settings: Settings, tmp_path: Path
) -> None:
    store_backend.spec.apply(parse_spec(SPEC, environment=None))
    X, y = [[0.0], [1.0], [0.5], [0.2]], [0, 1, 1, 0]
    run = store_backend.tracking.create_run("fraud")
    store_backend.registry.log_model(
        run.id, LogisticRegression().fit(X, y), input_example=X[:2], convert_onnx=False
    )
    store_backend.registry.register("fraud", run_id=run.id)  # a version: not part of the spec
    exported = dump_spec(store_backend.spec.export())
    empty = local_backend(Settings(uri=str(tmp_path / "empty")))
    try:
        empty.spec.apply(parse_spec(exported))
        assert dump_spec(empty.spec.export()) == exported
    finally:
        empty.close()
    del store_settings


def test_two_applies_at_once_leave_one_consistent_state(store_settings: Settings) -> None:
    first = local_backend(store_settings)
    second = local_backend(store_settings)
    one, other = parse_spec(SPEC), parse_spec(OTHER)
    failures = apply_at_once([(first, one), (second, other)])
    try:
        assert failures == []
        live = first.spec.live()
        # One spec won entirely: the two fields changed together, never one from each.
        state = (live[("Deployment", "fraud")]["workers"], live[("RoleBinding", "bob")]["role"])
        assert state in {(2, "member"), (5, "viewer")}
        applies = first.governance.audit.events(action="spec.applied")
        assert len(applies) == 2 and first.governance.audit.verify().ok
        winner = one if state == (2, "member") else other
        assert first.spec.plan(winner).changes == []
    finally:
        first.close()
        second.close()


def test_cli_exit_codes_like_terraform(store_settings: Settings, tmp_path: Path) -> None:
    env = store_env(store_settings)
    spec = tmp_path / "shipyard.yaml"
    spec.write_text(SPEC)
    planned = cli("plan", "-f", str(spec), env=env)
    assert planned.returncode == 2, planned.stderr  # changes pending
    assert "+ Model/fraud" in planned.stdout and "Plan: 10 to add" in planned.stdout
    applied = cli("apply", "-f", str(spec), "--json", env=env)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["summary"]["create"] == 10
    assert cli("plan", "-f", str(spec), env=env).returncode == 0  # nothing to do
    assert cli("drift", env=env).returncode == 0
    edited = cli("spec", "set", "Deployment/fraud", "workers=4", env=env)
    assert edited.returncode == 0, edited.stderr
    drifted = cli("drift", "--json", env=env)
    assert drifted.returncode == 2
    (item,) = json.loads(drifted.stdout)["drift"]
    assert item["fields"] == [{"path": "workers", "applied": 2, "live": 4}]
    undo = cli("plan", "-f", str(spec), env={**env, "SHIPYARD_USER": "quinn"})
    assert undo.returncode == 2
    assert "~ Deployment/fraud (changed outside the spec by" in undo.stdout
    assert "workers: 4 -> 2" in undo.stdout
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(
        SPEC.replace("risk_tier: high", "risk_tier: huge").replace("workers: 2", "workers: 0")
    )
    bad = cli("plan", "-f", str(invalid), env=env)
    assert bad.returncode == 1 and bad.stderr.count("error: ") == 2
    assert "invalid.yaml:" in bad.stderr and "Traceback" not in bad.stderr
    leaked = tmp_path / "leaked.yaml"
    leaked.write_text(SPEC.replace("${OPS_WEBHOOK}", "https://hooks.slack.com/services/T1/B2/c3"))
    refused = cli("apply", "-f", str(leaked), env=env)
    assert refused.returncode == 1 and "Slack webhook URL" in refused.stderr
    out = tmp_path / "exported.yaml"
    assert cli("export", "-o", str(out), env=env).returncode == 0
    assert "kind: Deployment" in out.read_text() and "workers: 4" in out.read_text()
    schema = cli("spec", "schema", env=env)
    assert schema.returncode == 0 and json.loads(schema.stdout)["oneOf"]
    assert cli("plan", "-f", str(tmp_path / "missing.yaml"), env=env).returncode == 1


# --- through a token-auth server ---------------------------------------------------------


def test_plan_apply_drift_and_export_through_a_server(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    server = TokenServer(home)
    member = issue_tokens(Settings(uri=str(home)), {"bob": "member"})["bob"]
    admin_env = {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": server.token}
    spec = tmp_path / "shipyard.yaml"
    spec.write_text(SPEC)
    try:
        as_bob = {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": member}
        assert cli("plan", "-f", str(spec), env=as_bob).returncode == 2  # a member may plan
        refused = cli("apply", "-f", str(spec), env=as_bob)
        assert refused.returncode == 2 and "needs admin" in refused.stderr
        applied = cli("apply", "-f", str(spec), env=admin_env)
        assert applied.returncode == 0, applied.stderr
        assert cli("plan", "-f", str(spec), env=admin_env).returncode == 0
        # A hand edit through the server, and a role granted on the server's store.
        assert (
            cli("spec", "set", "Monitor/fraud-daily", "window.every=12h", env=as_bob).returncode
            == 0
        )
        here = local_backend(Settings(uri=str(home)))
        try:
            with acting_as("ops-oncall"):
                here.governance.identity.set_role("alice", "admin")
        finally:
            here.close()
        drifted = cli("drift", "--json", env=admin_env)
        assert drifted.returncode == 2, drifted.stderr
        found = {(d["kind"], d["name"]): d for d in json.loads(drifted.stdout)["drift"]}
        assert found[("Monitor", "fraud-daily")]["by"] == ["bob"]
        assert found[("RoleBinding", "alice")]["by"] == ["ops-oncall"]
        watched = cli("pipeline", "run", "shipyard.sdk.spec_watch:watch_drift", env=admin_env)
        assert watched.returncode == 0, watched.stderr  # judged and stored on the server
        listed = json.loads(
            cli("alerts", "list", "--monitor", "spec-drift", "--json", env=admin_env).stdout
        )
        assert [a["rule"] for a in listed["alerts"]] == ["config-drift"]
        # The server checks documents again: a secret or a bad body sent directly is refused.
        leaked = {
            "kind": "Notifier",
            "name": "x",
            "body": {"type": "webhook", "url": "https://hooks.slack.com/services/T/B/c"},
        }
        answer = httpx.post(
            f"{server.url}/api/v1/spec/apply",
            json={"documents": [leaked]},
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30,
        )
        assert answer.status_code == 400 and "Slack webhook URL" in answer.json()["error"]
        assert answer.json()["context"]["errors"]
        schema = httpx.get(
            f"{server.url}/api/v1/spec/schema",
            headers={"Authorization": f"Bearer {member}"},
            timeout=30,
        )
        assert schema.status_code == 200 and len(schema.json()["oneOf"]) == 10
        exported = cli("export", env=admin_env)
        assert exported.returncode == 0, exported.stderr
        (tmp_path / "exported.yaml").write_text(exported.stdout)
    finally:
        server.stop()
    # export -> apply on an empty server -> export gives the same document.
    other = TokenServer(tmp_path / "other-home")
    try:
        env = {"SHIPYARD_URI": other.url, "SHIPYARD_TOKEN": other.token}
        done = cli("apply", "-f", str(tmp_path / "exported.yaml"), env=env)
        assert done.returncode == 0, done.stderr
        again = cli("export", env=env).stdout
        # The empty server's own admin (root) is a user there too: the same binding.
        assert again == (tmp_path / "exported.yaml").read_text()
    finally:
        other.stop()


def test_two_clients_apply_through_a_server_at_once(tmp_path: Path) -> None:
    server = TokenServer(tmp_path / "server-home")
    try:
        clients = [rest_backend(Settings(uri=server.url, token=server.token)) for _ in range(2)]
        docs = (parse_spec(SPEC), parse_spec(OTHER))
        failures = apply_at_once(list(zip(clients, docs, strict=True)))
        assert failures == []
        live = clients[0].spec.live()
        state = (live[("Deployment", "fraud")]["workers"], live[("RoleBinding", "bob")]["role"])
        assert state in {(2, "member"), (5, "viewer")}
        for c in clients:
            c.close()
    finally:
        server.stop()


def test_a_scheduled_drift_watch_raises_an_alert_and_resolves(
    store_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    monkeypatch.setenv("OPS_WEBHOOK", receiver.url)  # the spec names it; the value is here
    backend = local_backend(store_settings.model_copy(update={"webhook_allow": "127.0.0.1"}))
    try:
        spec = backend.spec
        spec.apply(parse_spec(SPEC))
        calm = spec.watch_drift(["ops"])
        assert calm["status"] == "ok" and calm.get("alerts") == []
        with acting_as("carol"):
            spec.edit("Deployment", "fraud", {"threshold": 0.9})
        fired = spec.watch_drift(["ops"])
        assert fired["status"] == "alert" and fired["alerts"][0]["status"] == "firing"
        assert "Deployment/fraud (changed by carol)" in fired["checks"][0]["message"]
        text = receiver.bodies[-1]["text"]  # the notifier is declared with format: slack
        assert text.startswith("[warning] firing:") and "spec-drift/config-drift" in text
        assert spec.watch_drift(["ops"]).get("alerts") == []  # still drifting: the same alert
        spec.apply(parse_spec(SPEC))
        resolved = spec.watch_drift(["ops"])
        assert resolved["alerts"][0]["status"] == "resolved"
        assert [b["text"].split()[1] for b in receiver.bodies] == ["firing:", "resolved:"]
        with pytest.raises(InvalidInputError, match="no declared notifier 'pager'"):
            spec.watch_drift(["pager"])
    finally:
        backend.close()
        receiver.close()
    # The same check as a pipeline on a schedule, run once by hand here.
    env = {**store_env(store_settings), "OPS_WEBHOOK": "http://127.0.0.1:9/x"}
    ran = cli("pipeline", "run", "shipyard.sdk.spec_watch:watch_drift", "-p", "notify=ops", env=env)
    assert ran.returncode == 0, ran.stderr
    history = cli("monitor", "history", "spec-drift", "--json", env=env)
    assert [r["status"] for r in json.loads(history.stdout)["results"]][-1] == "ok"


def test_pinned_aliases_are_applied_and_a_hand_move_is_drift(store_backend: Backend) -> None:
    X, y = [[0.0], [1.0], [0.5], [0.2]], [0, 1, 1, 0]
    for _ in range(2):
        run = store_backend.tracking.create_run("fraud-candidates")
        store_backend.registry.log_model(
            run.id, LogisticRegression().fit(X, y), input_example=X[:2], convert_onnx=False
        )
        store_backend.registry.register("fraud", run_id=run.id)
    pinned = SPEC.replace("allowed_estimators:", "aliases: {challenger: 1}, allowed_estimators:")
    spec = store_backend.spec
    spec.apply(parse_spec(pinned))
    assert store_backend.registry.get_model("fraud").aliases == {"challenger": 1}
    with acting_as("dave", Role.APPROVER):
        store_backend.registry.set_alias("fraud", "challenger", 2)  # moved by hand
        store_backend.registry.set_alias("fraud", "shadow", 2)  # not pinned: not drift
    (item,) = spec.drift()
    assert (item.kind, item.name, item.by) == ("Model", "fraud", ["dave"])
    assert [(f.path, f.old, f.new) for f in item.fields] == [("aliases.challenger", 1, 2)]
    assert "alias.set" in item.actions
    # champion moves through approvals only: a spec that would move it cannot be applied.
    crowned = pinned.replace("aliases: {challenger: 1}", "aliases: {champion: 2}")
    plan = spec.plan(parse_spec(crowned))
    assert any("champion moves through an approval" in p for p in plan.problems)
    with pytest.raises(InvalidInputError, match="champion moves through an approval"):
        spec.apply(parse_spec(crowned))
    spec.apply(parse_spec(pinned))  # puts challenger back; shadow, not pinned, stays
    assert store_backend.registry.get_model("fraud").aliases == {"challenger": 1, "shadow": 2}
    assert spec.drift() == []


def test_a_models_allowed_estimators_are_enforced_at_registration(store_backend: Backend) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    store_backend.spec.apply(parse_spec(SPEC))  # fraud allows lightgbm, logistic_regression
    X, y = [[0.0], [1.0], [0.5], [0.2]], [0, 1, 1, 0]

    def register(model: object) -> int:
        run = store_backend.tracking.create_run("fraud-candidates")
        store_backend.registry.log_model(run.id, model, input_example=X[:2], convert_onnx=False)
        return store_backend.registry.register("fraud", run_id=run.id).version

    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(PermissionDeniedError, match="allows only lightgbm, logistic_regression"):
        register(forest)
    assert register(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)) == 1
    assert store_backend.registry.list_versions("fraud")[0].version == 1
