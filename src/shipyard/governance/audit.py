"""AuditService: append events for the current actor; list, export and verify the chain."""

from __future__ import annotations

import logging
from typing import Any, Unpack

from shipyard.core.actor import current_actor
from shipyard.core.audit import AuditEvent, AuditFilter, ChainCheck, check_anchor, verify_chain
from shipyard.core.clock import now_ms
from shipyard.core.ids import new_id
from shipyard.governance.ports import AuditAnchorStore, AuditStore

logger = logging.getLogger(__name__)


class AuditService:
    """The audit log of one store (implements core's AuditLog)."""

    def __init__(self, store: AuditStore, anchor: AuditAnchorStore | None = None) -> None:
        self.store = store
        self.anchor = anchor

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Append an event for the current actor, then move the signed anchor to it."""
        event = self.store.append(
            new_id("evt"), now_ms(), current_actor(), action, obj, payload or {}
        )
        if self.anchor is not None:
            self.anchor.advance(event.seq, event.hash)

    def events(self, **filters: Unpack[AuditFilter]) -> list[AuditEvent]:
        """Events in order, optionally from a time, for one object and its children, with an
        action prefix or by one actor (filtered in the database)."""
        return self.store.events(**filters)

    def verify(self) -> ChainCheck:
        """Walk the whole chain from the first event and hold it against the anchor."""
        events = self.store.events()
        check = verify_chain(events)
        if self.anchor is None:
            return check
        return check_anchor(check, self.anchor.read(), {e.seq: e.hash for e in events})
