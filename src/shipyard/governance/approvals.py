"""Promotion to production through approvals, with separation of duties.

Rules: a promotion needs an open request and a passing gate report for exactly that
version; each approver holds the ``approver`` role and is neither the person who
registered the version nor the one who trained its run; the model's ``approvals_required``
approvals promote it (production state, ``champion`` moved, previous champion retired),
exactly once even when approvers race; one rejection closes the request. ``rollback``
restores the previous champion. Every step is audited.
"""

from __future__ import annotations

from shipyard.core.actor import current_actor, current_role
from shipyard.core.audit import AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from shipyard.core.ids import new_id
from shipyard.core.names import check_text
from shipyard.gates.service import GateService
from shipyard.governance.models import Approval, PromotionRequest, Role
from shipyard.governance.ports import ApprovalStore
from shipyard.registry import service as registry_service
from shipyard.registry.models import ModelVersion, VersionState
from shipyard.registry.ports import ModelRegistry
from shipyard.tracking.service import USER_TAG

CHAMPION = registry_service.CHAMPION
MAX_NOTE = 5000


class ApprovalService:
    """Requests, approvals, rejections and rollbacks of model promotions."""

    def __init__(
        self,
        registry: ModelRegistry,
        gates: GateService,
        store: ApprovalStore,
        audit: AuditLog,
    ) -> None:
        self.registry = registry
        self.gates = gates
        self.store = store
        self.audit = audit

    def _passing_report(self, mv: ModelVersion) -> str:
        # Only a report the store computed counts: a posted one is the client's word.
        report = self.gates.latest(mv.name, mv.version, verified=True)
        if report.model != mv.name or report.version != mv.version:  # pragma: no cover
            raise PermissionDeniedError("the gate report is for another version")
        if not report.passed:
            failed = ", ".join(c.name for c in report.failed_checks)
            raise PermissionDeniedError(
                f"the latest gate report of {mv.uri} ({report.id}) failed: {failed}; "
                "fix the model or the data and gate it again",
                report=report.id,
            )
        return report.id

    def request(
        self, name: str, version: int | str, *, to: str = "production", note: str = ""
    ) -> PromotionRequest:
        """Open a promotion request; the version must have a passing gate report."""
        mv = self.registry.get_version(name, version)
        if to != "production":
            raise PermissionDeniedError("promotion requests target production")
        if mv.state not in (VersionState.CANDIDATE, VersionState.APPROVED):
            raise ConflictError(f"{mv.uri} is {mv.state.value}; only candidates are promoted")
        report = self._passing_report(mv)
        request = PromotionRequest(
            id=new_id("prq"),
            model=mv.name,
            version=mv.version,
            target=to,
            status="open",
            requested_by=current_actor(),
            note=check_text(note, "note", MAX_NOTE),
            created_at=now_ms(),
            gate_report=report,
        )
        with self.audit.atomic():
            self.store.create_request(request)
            self.audit.record(
                "promotion.requested",
                mv.uri,
                {"request": request.id, "to": to, "note": request.note, "gate_report": report},
            )
        return request

    def _open(self, mv: ModelVersion) -> PromotionRequest:
        found = self.store.open_request(mv.name, mv.version)
        if found is None:
            raise NotFoundError(
                f"{mv.uri} has no open promotion request; run shipyard models request-promotion",
                model=mv.name,
                version=mv.version,
            )
        return found

    def _check_approver(self, mv: ModelVersion) -> str:
        actor = current_actor()
        role = current_role()
        if not role.allows(Role.APPROVER):
            raise PermissionDeniedError(
                f"{actor} has role {role.value}; approving needs the approver role", actor=actor
            )
        if actor == mv.created_by:
            raise PermissionDeniedError(
                f"{actor} registered {mv.uri} and cannot approve it (separation of duties)",
                actor=actor,
            )
        trainer = self.registry.tracking.get_run(mv.run_id).tags.get(USER_TAG)
        if actor == trainer:
            raise PermissionDeniedError(
                f"{actor} trained {mv.uri} (run {mv.run_id}) and cannot approve it "
                "(separation of duties)",
                actor=actor,
            )
        return actor

    def approve(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """Approve; the last approval needed promotes the version."""
        mv = self.registry.get_version(name, version)
        actor = self._check_approver(mv)
        request = self._open(mv)
        report = self._passing_report(mv)
        with self.audit.atomic():
            self.store.add_decision(
                request.id, Approval(actor, "approve", check_text(note, "note", MAX_NOTE), now_ms())
            )
            self.audit.record(
                "promotion.approved",
                mv.uri,
                {"request": request.id, "note": note, "gate_report": report},
            )
            request = self._by_id(mv, request.id)
            needed = self.registry.get_model(mv.name).approvals_required
            approvals = [a for a in request.approvals if a.decision == "approve"]
            if request.status == "open" and len(approvals) >= needed:
                self._promote(mv, request)
        return self._by_id(mv, request.id)

    def _promote(self, mv: ModelVersion, request: PromotionRequest) -> None:
        previous = self.registry.get_model(mv.name).aliases.get(CHAMPION)
        if not self.store.close_request(request.id, "approved", now_ms(), previous):
            return  # another approver's call promoted it already
        current = self.registry.get_version(mv.name, mv.version)
        if current.state is VersionState.CANDIDATE:
            current = self.registry.governed_transition(mv.name, mv.version, VersionState.APPROVED)
        self.registry.governed_transition(mv.name, mv.version, VersionState.PRODUCTION)
        self.registry.governed_alias(mv.name, CHAMPION, mv.version)
        if previous is not None and previous != mv.version:
            old = self.registry.get_version(mv.name, previous)
            if old.state is VersionState.PRODUCTION:
                self.registry.governed_transition(mv.name, previous, VersionState.RETIRED)
        self.audit.record(
            "model.promoted", mv.uri, {"request": request.id, "previous_champion": previous}
        )

    def reject(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """Reject: the request closes and the version stays where it is."""
        mv = self.registry.get_version(name, version)
        actor = self._check_approver(mv)
        request = self._open(mv)
        with self.audit.atomic():
            self.store.add_decision(
                request.id, Approval(actor, "reject", check_text(note, "note", MAX_NOTE), now_ms())
            )
            self.store.close_request(request.id, "rejected", now_ms(), None)
            self.audit.record("promotion.rejected", mv.uri, {"request": request.id, "note": note})
        return self._by_id(mv, request.id)

    def rollback(self, name: str, *, note: str = "") -> ModelVersion:
        """Give ``champion`` back to the version it had before the last promotion.

        The caller and their role come from the context (the token, through a server).
        """
        role = current_role()
        if not role.allows(Role.APPROVER):
            raise PermissionDeniedError(
                f"{current_actor()} has role {role.value}; rollback needs the approver role"
            )
        model = self.registry.get_model(name)
        current = model.aliases.get(CHAMPION)
        promoted = [
            r
            for r in self.store.list_requests(name)
            if r.status == "approved" and r.version == current
        ]
        if current is None or not promoted or promoted[0].previous_champion is None:
            raise ConflictError(f"model {name!r} has no earlier champion to roll back to")
        previous = promoted[0].previous_champion
        with self.audit.atomic():
            target = self.registry.get_version(name, previous)
            if target.state is VersionState.RETIRED:
                self.registry.restore(name, previous)
            self.registry.governed_alias(name, CHAMPION, previous)
            now = self.registry.get_version(name, current)
            if now.state is VersionState.PRODUCTION:
                self.registry.governed_transition(name, current, VersionState.RETIRED)
            self.audit.record(
                "model.rolled_back",
                f"models:/{name}",
                {"from": current, "to": previous, "note": note},
            )
        return self.registry.get_version(name, previous)

    def requests(self, name: str, version: int | None = None) -> list[PromotionRequest]:
        """Promotion requests with their decisions, newest first."""
        self.registry.get_model(name)
        return self.store.list_requests(name, version)

    def _by_id(self, mv: ModelVersion, request_id: str) -> PromotionRequest:
        return next(r for r in self.store.list_requests(mv.name, mv.version) if r.id == request_id)
