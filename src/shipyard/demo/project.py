"""The demo's last act: the fraud project as code. A ``shipyard.yaml`` declares the model's
governance, who holds which role, the nightly training, the gate policy, the deployment and
the daily monitor; plan, apply, a hot fix by hand found as drift (with who made it), the
drift watch raising its alert, apply putting it back, and the live state exported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from shipyard.core.actor import acting_as
from shipyard.core.settings import Settings

_HEAD = {"apiVersion": "shipyard.dev/v1"}


def project_spec(
    people: dict[str, str], policy: dict[str, Any], monitor: dict[str, Any], rule: dict[str, Any]
) -> str:
    """The demo project's spec: one document per object."""
    docs: list[dict[str, Any]] = [
        *(
            {**_HEAD, "kind": "RoleBinding", "metadata": {"name": n}, "spec": {"role": r}}
            for n, r in people.items()
        ),
        {**_HEAD, "kind": "Experiment", "metadata": {"name": "fraud-training"}, "spec": {}},
        {
            **_HEAD,
            "kind": "Model",
            "metadata": {"name": "fraud"},
            "spec": {
                "owner": "fraud-analytics",
                "use_case": "fraud_detection",
                "risk_tier": "high",
                "approvals_required": 1,
                "allowed_estimators": ["lightgbm", "logistic_regression", "sklearn"],
            },
        },
        {
            **_HEAD,
            "kind": "Pipeline",
            "metadata": {"name": "fraud-nightly"},
            "spec": {
                "entry": "shipyard.demo.pipeline:fraud_training",
                "schedule": "0 2 * * *",
                "timezone": "Europe/Lisbon",
                "executor": "processes",
            },
        },
        {
            **_HEAD,
            "kind": "GatePolicy",
            "metadata": {"name": "fraud-gates"},
            "spec": {**policy, "models": ["fraud"]},
        },
        {
            **_HEAD,
            "kind": "Deployment",
            "metadata": {"name": "fraud"},
            "spec": {"model": "models:/fraud@champion", "workers": 2},
        },
        {
            **_HEAD,
            "kind": "Notifier",
            "metadata": {"name": "ops"},
            "spec": {"type": "webhook", "url": "${SHIPYARD_DEMO_WEBHOOK}", "retries": 1},
        },
        {**_HEAD, "kind": "Monitor", "metadata": {"name": "fraud-daily"}, "spec": monitor},
        {
            **_HEAD,
            "kind": "AlertRule",
            "metadata": {"name": "drift"},
            "spec": {**rule, "monitor": "fraud-daily"},
        },
        {
            # Budgets of the branches' card terminals, read by `shipyard edge export`.
            **_HEAD,
            "kind": "EdgeTarget",
            "metadata": {"name": "card-terminal"},
            "spec": {
                "max_size_mb": 0.1,
                "max_p99_ms": 1.0,
                "threads": 1,
                "max_metric_drop": 0.005,
                "max_score_diff": 0.05,
                "int8": True,
            },
        },
        {
            **_HEAD,
            "kind": "Environment",
            "metadata": {"name": "staging"},
            "spec": {"patches": [{"kind": "Deployment", "name": "fraud", "spec": {"workers": 1}}]},
        },
    ]
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def declare_project(
    settings: Settings,
    people: dict[str, str],
    policy: dict[str, Any],
    monitor: dict[str, Any],
    rule: dict[str, Any],
    *,
    console: Console,
) -> Path:
    """Plan and apply the project spec, find a hand edit as drift, put it back, export;
    return the spec file's path."""
    import shipyard
    from shipyard.spec.loader import dump_spec, load_spec

    home = settings.predlog_root.parent
    path = home / "shipyard.yaml"
    path.write_text(project_spec(people, policy, monitor, rule), encoding="utf-8")
    backend = shipyard.sdk.context.current().get_backend()
    spec = backend.spec
    docs = load_spec(path)
    plan = spec.plan(docs)
    table = Table(title=f"shipyard plan -f {path.name}", header_style="bold")
    for column in ("change", "object", "fields"):
        table.add_column(column)
    for change in plan.changes:
        colour = {"create": "green", "update": "yellow", "delete": "red"}[change.action]
        table.add_row(
            f"[{colour}]{change.action}[/]",
            f"{change.kind}/{change.name}",
            ", ".join(f.path for f in change.fields[:4])
            + (" ..." if len(change.fields) > 4 else ""),
        )
    console.print(table)
    done = spec.apply(docs)
    console.print(
        f"applied {path}: {done.count('create')} added, {done.count('update')} changed "
        f"({done.unchanged} unchanged), in one audited transaction"
    )
    rui = next((n for n in people if n == "rui"), next(iter(people)))
    with acting_as(rui):  # a hot fix at 3 am, by hand
        spec.edit("Monitor", "fraud-daily", {"quality.min_rows": 50})
    os.environ.setdefault("SHIPYARD_DEMO_WEBHOOK", "http://127.0.0.1:9/unreachable")
    watch = spec.watch_drift([])
    for item in spec.drift():
        fields = ", ".join(f"{f.path} {f.old} -> {f.new}" for f in item.fields)
        console.print(
            f"[yellow]drift[/]: {item.kind}/{item.name} {item.change} by "
            f"{', '.join(item.by) or 'unknown'}: {fields}"
        )
    fired = next(iter(watch.get("alerts") or []), None)
    if fired:
        console.print(f"drift watch: alert spec-drift/{fired['rule']} {fired['status']}")
    spec.apply(docs)
    after = spec.watch_drift([])
    console.print(
        f"apply again: drift {'gone' if not spec.drift() else 'left'}, drift alert "
        f"{next(iter(after.get('alerts') or [{}])).get('status', 'quiet')}"
    )
    exported = home / "shipyard-export.yaml"
    exported.write_text(dump_spec(spec.export()), encoding="utf-8")
    console.print(f"live state exported to {exported} - try: shipyard plan -f {path} -e staging")
    return path
