"""The model dossier: one self-contained page a reviewer can read, print and archive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shipyard.core.actor import current_actor
from shipyard.core.audit import AuditEvent
from shipyard.gates.ports import Gates
from shipyard.gates.render import environment, iso, num, pct
from shipyard.governance.lineage import model_lineage
from shipyard.governance.ports import Approvals, AuditTrail
from shipyard.pipelines.ports import PipelineStore
from shipyard.registry.models import KNOWN_USE_CASES
from shipyard.registry.ports import ModelRegistry


def _concerns(event: AuditEvent, name: str, version: int) -> bool:
    """Whether an event is about this version (directly, or an alias moved to or from it)."""
    if event.object == f"models:/{name}/{version}":
        return True
    if event.object.startswith(f"models:/{name}@"):
        return version in (event.payload.get("version"), event.payload.get("previous"))
    if event.object == f"models:/{name}":
        return version in (event.payload.get("from"), event.payload.get("to"))
    return False


def render_dossier(
    registry: ModelRegistry,
    gates: Gates,
    approvals: Approvals,
    audit: AuditTrail,
    pipelines: PipelineStore | None,
    name: str,
    version: int | str,
    *,
    retention_years: int = 7,
) -> str:
    """The dossier of one version as HTML: card, data profile, gates and fairness, approvals,
    lineage and the audit events with the chain's verification."""
    mv = registry.get_version(name, version)
    model = registry.get_model(mv.name)
    reports = gates.reports(mv.name, mv.version)
    events = [
        e for e in audit.events(obj=f"models:/{mv.name}") if _concerns(e, mv.name, mv.version)
    ]
    card: dict[str, Any] = mv.card or {}
    training = ((card.get("model_parameters") or {}).get("data") or {}).get("training") or {}
    profile = training.get("profile") or {}
    template = environment("shipyard.governance").get_template("dossier.html.j2")
    return template.render(
        mv=mv,
        model=model,
        use_case_note=KNOWN_USE_CASES.get(model.use_case or ""),
        card=card,
        profile=profile if isinstance(profile, dict) and profile.get("columns") else None,
        report=reports[0] if reports else None,
        older=max(0, len(reports) - 1),
        requests=approvals.requests(mv.name, mv.version),
        lineage=model_lineage(registry, gates, approvals, pipelines, mv.uri),
        events=events,
        chain=audit.verify(),
        retention=retention_years,
        actor=current_actor(),
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        iso=iso,
        num=num,
        pct=pct,
    )
