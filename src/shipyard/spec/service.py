"""Plan, apply, export and drift of a project spec against a store's live state.

Live state is read where it lives: experiments from tracking, models' governance from the
registry, pipelines' schedules from the schedule store, role bindings from the users;
gate policies, deployments, monitors, alert rules and notifiers are objects only a spec
declares. An apply is one unit of work (all or nothing) under the apply lock, every change
audited; it keeps a snapshot of what it wrote, so drift is what changed since, by whom.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.actor import current_actor, require_role
from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError
from shipyard.core.roles import Role
from shipyard.governance.audit import AuditService
from shipyard.governance.identity import IdentityService
from shipyard.monitoring.service import MonitorService
from shipyard.pipelines.ports import ScheduleStore
from shipyard.pipelines.schedules import Schedule, check_cron
from shipyard.registry.models import ALLOWED_ESTIMATORS_TAG
from shipyard.registry.ports import ModelRegistry
from shipyard.spec.diff import (
    Change,
    FieldChange,
    Key,
    Plan,
    comparable,
    field_changes,
    managed,
    plan_changes,
)
from shipyard.spec.documents import KINDS, Document, body_of
from shipyard.spec.ports import SpecObjectStore
from shipyard.tracking.service import TrackingService

#: Kinds kept only as declared objects (nothing else in Shipyard stores them).
DECLARED = ("GatePolicy", "Deployment", "Notifier", "Monitor", "AlertRule")
#: Kinds whose objects only a spec should make: one made by hand is drift.
STRICT = frozenset({"RoleBinding", "Pipeline", *DECLARED})
#: The model tag that holds its allowed estimator families (the registry enforces it).
ALLOWED_TAG = ALLOWED_ESTIMATORS_TAG
#: The monitor whose windows are configuration-drift checks (``watch_drift``).
DRIFT_MONITOR = "spec-drift"
#: Audit actions of applies themselves (not drift).
_APPLY_ACTIONS = ("spec.created", "spec.updated", "spec.deleted", "spec.applied")


@dataclass
class DriftItem:
    """One object that changed outside the spec since the last apply."""

    kind: str
    name: str
    change: str  # "changed", "deleted" or "created"
    fields: list[FieldChange] = field(default_factory=list)
    by: list[str] = field(default_factory=list)  # who changed it (from the audit log)
    at: int | None = None  # when, last (ms)
    actions: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftItem:
        """From ``to_dict``'s form (drift sent by a server)."""
        fields = [FieldChange(f["path"], f["applied"], f["live"]) for f in data["fields"]]
        return cls(
            data["kind"],
            data["name"],
            data["change"],
            fields,
            data["by"],
            data["at"],
            data["actions"],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for ``--json``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "fields": [{"path": f.path, "applied": f.old, "live": f.new} for f in self.fields],
            "by": self.by,
            "at": self.at,
            "actions": self.actions,
        }


def audit_object(kind: str, name: str) -> str:
    """The audit log's name of an object of a kind."""
    return {
        "Model": f"models:/{name}",
        "RoleBinding": f"user:{name}",
        "Experiment": f"experiment:{name}",
        "Pipeline": f"schedule:{name}",
    }.get(kind, f"spec:{kind}/{name}")


def _when(at: int | None) -> str:
    if at is None:
        return ""
    from datetime import UTC, datetime

    return " at " + datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="seconds")


def digest(docs: list[Document]) -> str:
    """A short fingerprint of a set of documents (what an apply recorded)."""
    text = json.dumps(sorted((d.kind, d.name, d.body) for d in docs), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SpecService:
    """Plan, apply, export and drift for one store."""

    def __init__(
        self,
        tracking: TrackingService,
        registry: Callable[[], ModelRegistry],
        identity: Callable[[], IdentityService],
        schedules: ScheduleStore,
        objects: SpecObjectStore,
        audit: AuditService,
        monitors: Callable[[], MonitorService] | None = None,
    ) -> None:
        self.tracking = tracking
        self._registry = registry
        self._identity = identity
        self.schedules = schedules
        self.objects = objects
        self.audit = audit
        self._monitors = monitors

    # live state -------------------------------------------------------------------------

    def live(self) -> dict[Key, dict[str, Any]]:
        """Every live object of every kind, in the form a spec document has."""
        found: dict[Key, dict[str, Any]] = {}
        for exp in self.tracking.list_experiments():
            found[("Experiment", exp.name)] = body_of("Experiment", exp.name, {"tags": exp.tags})
        for model in self._registry().list_models():
            allowed = model.tags.get(ALLOWED_TAG, "")
            raw: dict[str, Any] = {
                "description": model.description,
                "owner": model.owner,
                "use_case": model.use_case,
                "risk_tier": model.risk_tier,
                "intended_use": model.intended_use,
                "approvals_required": model.approvals_required,
                "allowed_estimators": [a for a in allowed.split(",") if a],
                "aliases": dict(model.aliases),
            }
            found[("Model", model.name)] = body_of("Model", model.name, raw)
        for sched in self.schedules.list_schedules():
            raw = {
                "entry": sched.target,
                "schedule": sched.cron,
                "timezone": sched.timezone,
                "params": sched.params,
                "executor": sched.executor,
                "enabled": sched.enabled,
            }
            found[("Pipeline", sched.name)] = body_of("Pipeline", sched.name, raw)
        for user in self._identity().list_users():
            if not user.disabled:
                found[("RoleBinding", user.name)] = {"role": user.role.value}
        for obj in self.objects.list_objects():
            found[(obj.kind, obj.name)] = obj.body
        return found

    # plan and apply ---------------------------------------------------------------------

    def plan(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """What apply would change, without changing anything; changes that undo a hand
        edit say who made it and when."""
        found = self._plan(docs, prune=prune)
        for item in self.drift():
            when = _when(item.at)
            who = ", ".join(item.by) or "someone (not in the audit log)"
            found.drifted[f"{item.kind}/{item.name}"] = (
                f"{item.change} outside the spec by {who}{when}"
            )
        return found

    def _plan(self, docs: list[Document], *, prune: bool) -> Plan:
        desired = {d.key: d.body for d in docs}
        applied = {(a.kind, a.name) for a in self.objects.applied()}
        return plan_changes(desired, self.live(), prune=prune, applied=applied)

    def apply(self, docs: list[Document], *, prune: bool = False) -> Plan:
        """Make every change of the plan in one transaction, or none (an admin's act)."""
        require_role(Role.ADMIN, "apply a spec")
        at, by = now_ms(), current_actor()
        with self.audit.atomic():
            self.objects.lock()  # a second apply waits here, then plans on this one's result
            plan = self._plan(docs, prune=prune)
            if plan.problems:
                raise InvalidInputError("apply cannot make: " + "; ".join(plan.problems))
            for change in plan.changes:
                self._make(change)
                self.audit.record(
                    f"spec.{change.action}d",
                    audit_object(change.kind, change.name),
                    {"fields": [f.path for f in change.fields]},
                )
                if change.action == "delete":
                    self.objects.forget_applied(change.kind, change.name)
            kept = {(a.kind, a.name): a.body for a in self.objects.applied()}
            for doc in docs:
                body = managed(doc.kind, doc.body)
                if kept.get(doc.key) != body:  # only what this apply changed is rewritten
                    self.objects.record_applied(doc.kind, doc.name, body, at, by)
            self.audit.record(
                "spec.applied",
                "spec:project",
                {
                    "digest": digest(docs),
                    "objects": len(docs),
                    "created": plan.count("create"),
                    "updated": plan.count("update"),
                    "deleted": plan.count("delete"),
                },
            )
        return plan

    def _make(self, change: Change) -> None:
        kind, name, body = change.kind, change.name, change.body or {}
        if kind in DECLARED:
            if change.action == "delete":
                self.objects.delete_object(kind, name)
            else:
                self.objects.put_object(kind, name, body, now_ms(), current_actor())
        elif kind == "Experiment":
            self.tracking.create_experiment(name, body.get("tags") or {})
        elif kind == "Model":
            self._model(change, body)
        elif kind == "Pipeline":
            if change.action == "delete":
                self.schedules.delete_schedule(name)
                return
            check_cron(body["schedule"], body["timezone"])
            old = next((s for s in self.schedules.list_schedules() if s.name == name), None)
            self.schedules.save_schedule(
                Schedule(
                    name,
                    body["entry"],
                    body["schedule"],
                    body["timezone"],
                    body["params"],
                    body["enabled"],
                    old.created_at if old else now_ms(),
                    old.last_tick_at if old else None,
                    executor=body["executor"],
                )
            )
        elif kind == "RoleBinding":
            self._binding(change, body)

    def _model(self, change: Change, body: dict[str, Any]) -> None:
        registry, name = self._registry(), change.name
        if change.action == "create":
            registry.create_model(name, description=body.get("description") or "")
        touched = {f.path.split(".")[0] for f in change.fields}
        if "description" in touched and change.action == "update":
            registry.update_model(name, body.get("description") or "")
        governance = {
            k: body[k]
            for k in ("owner", "use_case", "risk_tier", "intended_use", "approvals_required")
            if k in touched and body.get(k) is not None
        }
        if governance:
            registry.set_governance(name, **governance)
        if "allowed_estimators" in touched:
            families = ",".join(body.get("allowed_estimators") or [])
            registry.set_tag(name, None, ALLOWED_TAG, families or None)
        for item in change.fields:
            if item.path.startswith("aliases."):  # champion never gets here (a plan problem)
                alias = item.path.removeprefix("aliases.")
                if item.new is None:
                    registry.delete_alias(name, alias, reason="shipyard apply")
                else:
                    registry.set_alias(name, alias, int(item.new), reason="shipyard apply")

    def _binding(self, change: Change, body: dict[str, Any]) -> None:
        identity, name = self._identity(), change.name
        known = {u.name: u for u in identity.list_users()}
        if change.action == "delete":
            identity.set_role(name, known[name].role, disabled=True)
        elif name in known:  # an update, or a user an earlier prune disabled
            identity.set_role(name, body["role"])
        else:
            identity.create_user(name, body["role"])

    # export and drift -------------------------------------------------------------------

    def export(self) -> list[Document]:
        """The live state as documents: applied to an empty store, it gives the same."""
        order = {kind: i for i, kind in enumerate(KINDS)}
        docs = [
            # Aliases point at versions, which a spec does not make: pin them by hand.
            Document(
                kind=kind, name=name, body={**body, "aliases": None} if kind == "Model" else body
            )
            for (kind, name), body in self.live().items()
        ]
        return sorted(docs, key=lambda d: (order[d.kind], d.name))

    def drift(self) -> list[DriftItem]:
        """Objects changed, deleted or made outside the spec since the last apply, with who
        did it and when (from the audit log)."""
        applied = {(a.kind, a.name): a for a in self.objects.applied()}
        if not applied:
            return []
        live = self.live()
        found: list[DriftItem] = []
        for key, snapshot in applied.items():
            if key not in live:
                found.append(DriftItem(key[0], key[1], "deleted"))
                continue
            have = comparable(key[0], live[key], snapshot.body)
            fields = field_changes(snapshot.body, have)
            if fields:
                found.append(DriftItem(key[0], key[1], "changed", fields))
        since = min(a.at for a in applied.values())
        applies = self.audit.events(obj="spec:project", action="spec.applied", since=since)
        last_apply = max((e.seq for e in applies), default=0)
        for key in live:
            if key not in applied and key[0] in STRICT:
                found.append(DriftItem(key[0], key[1], "created"))
        for item in found:
            snap = applied.get((item.kind, item.name))
            events = self.audit.events(
                obj=audit_object(item.kind, item.name), since=snap.at if snap else since
            )
            mine = [e for e in events if e.seq > last_apply and e.action not in _APPLY_ACTIONS]
            item.by = sorted({e.actor for e in mine})
            item.actions = [e.action for e in mine]
            item.at = max((e.time for e in mine), default=None)
        return found

    def watch_drift(self, notify: list[str]) -> dict[str, Any]:
        """Judge drift as a monitor window of ``spec-drift``: its ``config-drift`` alert fires
        (once) while the store differs from the last apply, notifying the declared
        notifiers named, and resolves when it matches again. For a schedule."""
        if self._monitors is None:
            raise InvalidInputError("this store keeps no monitor results")
        from datetime import UTC, datetime, timedelta

        from shipyard.monitoring.spec import parse_monitor

        live = self.live()
        missing = [n for n in notify if ("Notifier", n) not in live]
        if missing:
            raise InvalidInputError(f"no declared notifier {', '.join(map(repr, missing))}")
        monitor = parse_monitor(
            {
                "name": DRIFT_MONITOR,
                "deployment": "-",
                "alerts": [{"name": "config-drift", "check": "config_drift", "notify": notify}],
                "notifiers": {n: live[("Notifier", n)] for n in notify},
            }
        )
        found = self.drift()
        names = [
            f"{d.kind}/{d.name} ({d.change}{' by ' + ', '.join(d.by) if d.by else ''})"
            for d in found
        ]
        end = datetime.now(UTC).replace(microsecond=0)
        check = {
            "name": "config_drift",
            "kind": "drift",
            "status": "failed" if found else "passed",
            "value": float(len(found)),
            "threshold": "0 objects changed outside the spec",
            "message": f"{len(found)} object(s) changed outside the spec"
            + (f": {'; '.join(names)}" if names else ""),
        }
        result = {
            "monitor": DRIFT_MONITOR,
            "deployment": "-",
            "window_start": (end - timedelta(seconds=1)).isoformat(),
            "window_end": end.isoformat(),
            "rows": len(found),
            "status": "alert" if found else "ok",
            "checks": [check],
            "config_drift": [d.to_dict() for d in found],
        }
        return self._monitors().record(monitor, end - timedelta(seconds=1), end, result)

    def edit(self, kind: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a declared object by hand (``path.to.field`` -> value); audited,
        and reported as drift until the spec says the same or is applied again."""
        if kind not in DECLARED:
            raise InvalidInputError(
                f"only {', '.join(DECLARED)} objects are edited here; {kind} has its own commands"
            )
        current = next(
            (o for o in self.objects.list_objects() if (o.kind, o.name) == (kind, name)), None
        )
        if current is None:
            from shipyard.core.errors import NotFoundError

            raise NotFoundError(f"{kind}/{name} does not exist")
        body = json.loads(json.dumps(current.body))
        for path, value in changes.items():
            parts = path.split(".")
            node = body
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise InvalidInputError(f"{kind}/{name} has no field {path}")
                node = node[part]
            if parts[-1] not in node:
                raise InvalidInputError(f"{kind}/{name} has no field {path}")
            node[parts[-1]] = value
        from pydantic import ValidationError

        try:
            checked = body_of(kind, name, body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidInputError(f"{kind}/{name}: {where}: {first.get('msg')}") from None
        with self.audit.atomic():
            self.objects.put_object(kind, name, checked, now_ms(), current_actor())
            self.audit.record("spec.edited", audit_object(kind, name), {"fields": sorted(changes)})
        return checked
