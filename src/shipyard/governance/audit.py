"""AuditService: append events for the current actor; list, export and verify the chain."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Unpack

from shipyard.core.actor import current_actor
from shipyard.core.audit import (
    AuditEntry,
    AuditEvent,
    AuditFilter,
    ChainCheck,
    check_anchor,
    verify_chain,
)
from shipyard.core.clock import now_ms
from shipyard.core.ids import new_id
from shipyard.governance.ports import AuditAnchorStore, AuditStore, Transactions

#: Where a unit's scratch state keeps the events recorded in it, until it commits.
_PENDING = "audit.pending"

logger = logging.getLogger(__name__)


class AuditService:
    """The audit log of one store (implements core's AuditLog)."""

    def __init__(
        self,
        store: AuditStore,
        anchor: AuditAnchorStore | None = None,
        tx: Transactions | None = None,
    ) -> None:
        self.store = store
        self.anchor = anchor
        self.tx = tx

    def atomic(self) -> AbstractContextManager[Any]:
        """A unit of work: the changes made inside and the events recorded inside commit
        together, so no change is left without its event and no event without its change."""
        return self.tx.atomic() if self.tx is not None else nullcontext()

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Append an event for the current actor, then move the signed anchor to it.

        Inside ``atomic`` the event is appended in the unit's transaction as it commits, and
        the anchor moves only once it has committed.
        """
        entry = AuditEntry(new_id("evt"), now_ms(), current_actor(), action, obj, payload or {})
        tx = self.tx
        state = tx.unit_state() if tx is not None else None
        if tx is None or state is None:
            self._append([entry])
            return
        # Inside a unit, events gather and are appended together just before it commits.
        pending: list[AuditEntry] | None = state.get(_PENDING)
        if pending is None:
            pending = state[_PENDING] = []
            tx.before_commit(lambda: self._append(state.pop(_PENDING)))
        pending.append(entry)

    def _append(self, entries: list[AuditEntry]) -> None:
        events = self.store.append(entries)
        if self.anchor is not None and events:
            anchor, last = self.anchor, events[-1]
            self._after(lambda: anchor.advance(last.seq, last.hash))

    def _after(self, hook: Any) -> None:
        if self.tx is None:
            hook()
        else:
            self.tx.after_commit(hook)

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
