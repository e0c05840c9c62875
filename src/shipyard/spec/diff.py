"""The diff rules: what a spec would change, object by object and field by field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.spec.documents import KINDS

Key = tuple[str, str]
Action = Literal["create", "update", "delete"]
#: Kinds whose objects apply never deletes: a model's versions and an experiment's runs are
#: records (the audit trail refers to them).
KEPT = frozenset({"Model", "Experiment"})
#: Fields (or field paths) apply cannot change, with the reason.
IMMUTABLE = {
    ("Experiment", "tags"): "experiment tags are set when it is created",
    ("Model", "aliases.champion"): "champion moves through an approval (shipyard models "
    "request-promotion), never by apply: update the spec to the version approved",
}
#: Fields a spec may leave out (null) to leave them as they are.
OPTIONAL = {"Model": frozenset({"owner", "use_case", "risk_tier", "intended_use", "aliases"})}


#: Mapping fields a spec manages key by key: keys it leaves out are not its business.
PARTIAL = {("Model", "aliases")}


def comparable(kind: str, have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """The part of live ``have`` that ``want`` speaks of: its fields, and of a partial
    mapping only the keys it names."""
    found = {k: v for k, v in have.items() if k in want}
    for key in want:
        if (kind, key) in PARTIAL and isinstance(found.get(key), dict):
            found[key] = {k: v for k, v in found[key].items() if k in (want[key] or {})}
    return found


def _immutable(kind: str, path: str) -> str | None:
    """Why apply cannot change this field, if it cannot."""
    return IMMUTABLE.get((kind, path)) or IMMUTABLE.get((kind, path.split(".")[0]))


@dataclass(frozen=True)
class FieldChange:
    """One field of one object: its value now and the value wanted."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """What apply does to one object."""

    action: Action
    kind: str
    name: str
    fields: tuple[FieldChange, ...] = ()
    body: dict[str, Any] | None = None  # wanted (create, update)
    problem: str | None = None  # why apply cannot make it

    @property
    def key(self) -> Key:
        """(kind, name)."""
        return (self.kind, self.name)


@dataclass
class Plan:
    """Every change a spec would make, in apply order."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    kept: list[Key] = field(default_factory=list)  # not declared, but never deleted
    unmanaged: list[Key] = field(default_factory=list)  # made by hand, not by an apply
    #: Objects changed outside the spec since the last apply: who and when, for the reader.
    drifted: dict[str, str] = field(default_factory=dict)  # "Kind/name" -> "by rui at ..."

    @property
    def problems(self) -> list[str]:
        """Why apply would fail, one line per object."""
        return [f"{c.kind}/{c.name}: {c.problem}" for c in self.changes if c.problem]

    def count(self, action: Action) -> int:
        """How many objects this action touches."""
        return sum(1 for c in self.changes if c.action == action)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """From ``to_dict``'s form (a plan sent by a server)."""
        changes = [
            Change(
                c["action"],
                c["kind"],
                c["name"],
                tuple(FieldChange(f["path"], f["old"], f["new"]) for f in c["fields"]),
                problem=c.get("problem"),
            )
            for c in data["changes"]
        ]
        return cls(
            changes,
            int(data["summary"]["unchanged"]),
            [(k, n) for k, n in data.get("kept", [])],
            [(k, n) for k, n in data.get("unmanaged", [])],
            dict(data.get("drifted", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for ``--json``."""
        return {
            "kept": [list(k) for k in self.kept],
            "unmanaged": [list(k) for k in self.unmanaged],
            "drifted": self.drifted,
            "changes": [
                {
                    "action": c.action,
                    "kind": c.kind,
                    "name": c.name,
                    "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in c.fields],
                    **({"problem": c.problem} if c.problem else {}),
                }
                for c in self.changes
            ],
            "summary": {
                "create": self.count("create"),
                "update": self.count("update"),
                "delete": self.count("delete"),
                "unchanged": self.unchanged,
            },
            "problems": self.problems,
        }


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The leaves where ``new`` differs from ``old``: mappings compared key by key, anything
    else (lists, scalars) as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                found.append(FieldChange(sub, old[key], None))
            elif key not in old:
                found += (
                    field_changes(None, new[key], sub)
                    if isinstance(new[key], dict)
                    else [FieldChange(sub, None, new[key])]
                )
            else:
                found += field_changes(old[key], new[key], sub)
        return found
    if isinstance(new, dict) and old is None:
        return [
            c for k, v in new.items() for c in field_changes(None, v, f"{path}.{k}" if path else k)
        ]
    return [] if old == new else [FieldChange(path, old, new)]


def managed(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The part of ``body`` a spec manages: optional fields left null are left alone."""
    skip = OPTIONAL.get(kind, frozenset())
    return {k: v for k, v in body.items() if not (k in skip and v is None)}


def plan_changes(
    desired: dict[Key, dict[str, Any]],
    live: dict[Key, dict[str, Any]],
    *,
    prune: bool,
    applied: frozenset[Key] | set[Key] = frozenset(),
) -> Plan:
    """What makes ``live`` what ``desired`` declares. With ``prune``, objects an earlier
    apply made that the spec no longer declares are deleted; objects made by hand are
    never deleted (they are drift, reported by ``shipyard drift``)."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    plan = Plan()
    for key in sorted(desired, key=lambda k: (order[k[0]], k[1])):
        kind, name = key
        want = managed(kind, desired[key])
        if key not in live:
            plan.changes.append(
                Change("create", kind, name, tuple(field_changes(None, want)), desired[key])
            )
            continue
        changed = field_changes(comparable(kind, live[key], want), want)
        if not changed:
            plan.unchanged += 1
            continue
        problem = next(
            (f"{f.path}: {why}" for f in changed if (why := _immutable(kind, f.path))), None
        )
        plan.changes.append(Change("update", kind, name, tuple(changed), desired[key], problem))
    extra = sorted((k for k in live if k not in desired), key=lambda k: (-order[k[0]], k[1]))
    for key in extra:
        if key[0] in KEPT:
            plan.kept.append(key)
        elif key not in applied:
            plan.unmanaged.append(key)
        elif prune:
            old = tuple(FieldChange(p.path, p.new, None) for p in field_changes(None, live[key]))
            plan.changes.append(Change("delete", key[0], key[1], old))
    return plan
