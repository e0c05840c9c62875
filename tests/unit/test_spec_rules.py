"""The spec's rules: documents and their errors with lines, secrets, overlays, the diff."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from shipyard.core.errors import NotFoundError
from shipyard.spec.diff import FieldChange, field_changes, plan_changes
from shipyard.spec.documents import compose_monitor, document_schema
from shipyard.spec.loader import SpecError, dump_spec, parse_spec, secret_problem

HEAD = "apiVersion: shipyard.dev/v1\n"
GOOD = f"""{HEAD}kind: Model
metadata: {{name: fraud}}
spec: {{owner: risk, risk_tier: high, approvals_required: 2, allowed_estimators: [XGBoost, lightgbm]}}
---
{HEAD}kind: Notifier
metadata: {{name: ops}}
spec: {{type: webhook, url: "${{OPS_WEBHOOK}}"}}
---
{HEAD}kind: Monitor
metadata: {{name: watch}}
spec: {{deployment: fraud, window: {{every: 1d}}}}
---
{HEAD}kind: AlertRule
metadata: {{name: drift}}
spec: {{monitor: watch, check: drift, for: 2, notify: [ops]}}
---
{HEAD}kind: Deployment
metadata: {{name: fraud}}
spec: {{model: "models:/fraud@champion", workers: 4}}
---
{HEAD}kind: Environment
metadata: {{name: staging}}
spec:
  patches:
    - {{kind: Deployment, name: fraud, spec: {{workers: 1}}}}
    - {{kind: AlertRule, name: drift, delete: true}}
"""


def test_documents_are_checked_and_filled_with_defaults() -> None:
    docs = {d.key: d for d in parse_spec(GOOD)}
    model = docs[("Model", "fraud")].body
    assert model["allowed_estimators"] == ["lightgbm", "xgboost"]  # sorted, lower case
    assert model["use_case"] is None and model["description"] == ""
    rule = docs[("AlertRule", "drift")].body
    assert rule["for"] == 2 and rule["monitor"] == "watch" and "name" not in rule
    assert docs[("Notifier", "ops")].body["url"] == "${OPS_WEBHOOK}"  # kept, never resolved
    assert docs[("Monitor", "watch")].body["drift"]["method"] == "auto"


def test_an_environment_patches_values_and_drops_objects() -> None:
    staging = {d.key: d for d in parse_spec(GOOD, environment="staging")}
    assert staging[("Deployment", "fraud")].body["workers"] == 1
    assert staging[("Deployment", "fraud")].body["model"] == "models:/fraud@champion"
    assert ("AlertRule", "drift") not in staging
    with pytest.raises(SpecError, match="no Environment named 'prod' \\(declared: staging\\)"):
        parse_spec(GOOD, environment="prod")


def test_every_error_is_listed_with_its_line() -> None:
    bad = f"""{HEAD}kind: Model
metadata: {{name: fraud}}
spec:
  risk_tier: extreme
  approvals_required: 0
---
{HEAD}kind: Gizmo
metadata: {{name: x}}
---
{HEAD}kind: AlertRule
metadata: {{name: r}}
spec: {{monitor: nobody, notify: [ghost]}}
---
{HEAD}kind: Pipeline
metadata: {{name: nightly}}
spec: {{entry: "flows:train", schedule: "every night"}}
---
apiVersion: v0
kind: Model
---
{HEAD}kind: Model
metadata: {{name: fraud}}
"""
    with pytest.raises(SpecError) as caught:
        parse_spec(bad, "shipyard.yaml")
    errors = caught.value.errors
    joined = "\n".join(errors)
    assert "shipyard.yaml:5: Model/fraud: risk_tier: risk_tier must be one of" in joined
    assert "shipyard.yaml:6: Model/fraud: approvals_required:" in joined
    assert "shipyard.yaml:9: unknown kind 'Gizmo'" in joined
    assert "shipyard.yaml:20: Pipeline/nightly: schedule must be a 5-field cron" in joined
    assert "shipyard.yaml:22: apiVersion must be shipyard.dev/v1" in joined
    assert "shipyard.yaml:25: Model/fraud is declared twice (first at line 1)" in joined
    assert "AlertRule/r: no Monitor 'nobody' in the spec" in joined
    assert "AlertRule/r: no Notifier 'ghost' in the spec" in joined
    assert len(errors) == 8, joined
    with pytest.raises(SpecError, match=r"shipyard\.yaml:3: not valid YAML"):
        parse_spec("kind: [\n  x: y\n")


@pytest.mark.parametrize(
    ("path", "value", "what"),
    [
        ("Notifier/ops.spec.url", "https://hooks.slack.com/services/T0/B0/abc", "Slack webhook"),
        ("Notifier/ops.spec.url", "https://x.example/hook?token=abc", "a secret"),
        ("Notifier/ops.spec.url", "https://user:hunter2@x.example/hook", "password in a URL"),
        ("Notifier/ops.spec.url", "https://x.example/hooks/9f8e7d6c5b4a3f2e1d0c9b8a", "key in"),
        ("Model/m.spec.description", "use shy_" + "a" * 43, "Shipyard API token"),
        ("Notifier/ops.spec.api_key", "abc", "secret field"),
        ("Model/m.spec.owner", "AKIAABCDEFGHIJKLMNOP", "AWS access key"),
    ],
)
def test_a_literal_secret_is_refused(path: str, value: str, what: str) -> None:
    problem = secret_problem(path, value)
    assert problem is not None and what in problem and "${NAME}" in problem


@pytest.mark.parametrize(
    "value", ["${OPS_WEBHOOK}", "https://hooks.example.com/alerts", "https://x/${KEY}", "risk-team"]
)
def test_references_and_plain_values_pass(value: str) -> None:
    assert secret_problem("Notifier/ops.spec.url", value) is None


def test_a_spec_with_a_secret_names_its_line() -> None:
    text = f"""{HEAD}kind: Notifier
metadata: {{name: ops}}
spec:
  type: webhook
  url: https://hooks.slack.com/services/T000/B000/XXXX
"""
    with pytest.raises(SpecError, match=r"shipyard.yaml:6: Notifier/ops.spec.url holds a Slack"):
        parse_spec(text)


def test_field_changes_are_leaves_and_lists_are_whole() -> None:
    old = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "gone": 1}
    new = {"a": 1, "b": {"c": 3, "d": [1, 2, 3]}, "added": {"x": 1}}
    assert field_changes(old, new) == [
        FieldChange("added.x", None, 1),
        FieldChange("b.c", 2, 3),
        FieldChange("b.d", [1, 2], [1, 2, 3]),
        FieldChange("gone", 1, None),
    ]


def test_plan_rules_immutable_optional_prune_and_kept() -> None:
    live = {
        ("Experiment", "fraud"): {"tags": {"team": "risk"}},
        ("Model", "fraud"): {"owner": "risk", "use_case": "fraud", "approvals_required": 1},
        ("Model", "other"): {"owner": "x"},
        ("Notifier", "old"): {"type": "log"},
        ("Notifier", "handmade"): {"type": "log"},
        ("RoleBinding", "bob"): {"role": "member"},
    }
    desired = {
        ("Experiment", "fraud"): {"tags": {"team": "fraud"}},
        ("Model", "fraud"): {"owner": "risk", "use_case": None, "approvals_required": 2},
        ("RoleBinding", "bob"): {"role": "member"},
        ("Notifier", "new"): {"type": "log"},
    }
    applied = {("Notifier", "old"), ("Model", "other"), ("RoleBinding", "bob")}
    plan = plan_changes(desired, live, prune=True, applied=applied)
    by_key = {c.key: c for c in plan.changes}
    assert by_key[("Experiment", "fraud")].problem == (
        "tags.team: experiment tags are set when it is created"
    )
    # A null optional field is left as it is; the changed one is the only change.
    assert by_key[("Model", "fraud")].fields == (FieldChange("approvals_required", 1, 2),)
    assert by_key[("Notifier", "new")].action == "create"
    assert by_key[("Notifier", "old")].action == "delete"  # made by an apply, now undeclared
    assert ("Notifier", "handmade") not in by_key and ("Notifier", "handmade") in plan.unmanaged
    assert ("Model", "other") in plan.kept  # models are never deleted
    assert plan.unchanged == 1
    assert plan_changes(desired, live, prune=False, applied=applied).count("delete") == 0


def test_the_published_schema_checks_documents_as_editors_would() -> None:
    schema = document_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in yaml.safe_load_all(GOOD):
        assert not list(validator.iter_errors(doc)), doc
    wrong = {
        "apiVersion": "shipyard.dev/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"model": "models:/x", "workers": "many"},
    }
    assert list(validator.iter_errors(wrong))


def test_dump_and_parse_round_trip() -> None:
    docs = parse_spec(GOOD)
    again = parse_spec(dump_spec(docs))
    assert {d.key: d.body for d in again} == {d.key: d.body for d in docs}


def test_a_declared_monitor_is_composed_with_its_rules_and_notifiers() -> None:
    live = {d.key: d.body for d in parse_spec(GOOD)}
    monitor = compose_monitor("watch", live)
    assert monitor.name == "watch" and monitor.deployment == "fraud"
    assert [(r.name, r.windows, r.notify) for r in monitor.alerts] == [("drift", 2, ["ops"])]
    assert monitor.notifiers["ops"].url == "${OPS_WEBHOOK}"  # resolved where it sends
    with pytest.raises(NotFoundError, match="no declared monitor 'nope'"):
        compose_monitor("nope", live)
