"""The audit log's record and its hash chain, shared by the writer and the verifier.

Each event's hash is sha256 over its canonical JSON (sequence number, id, time, actor,
action, object, payload and the previous event's hash). Editing, deleting, inserting or
reordering any event breaks a link that ``verify_chain`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """One recorded action."""

    seq: int
    id: str
    time: int  # ms since the epoch, UTC
    actor: str
    action: str  # e.g. "model.registered", "alias.set", "promotion.approved"
    object: str  # e.g. "models:/fraud/3", "run:run_01...", "token:tok_01..."
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


def canonical(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers (everything but the hash itself)."""
    body = [
        event.seq,
        event.id,
        event.time,
        event.actor,
        event.action,
        event.object,
        event.payload,
        event.prev_hash,
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    """sha256 of the canonical form."""
    return hashlib.sha256(canonical(event)).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of walking the chain."""

    ok: bool
    events: int
    head: str  # hash of the last event: keep it elsewhere to detect a cut tail
    broken_at: int | None = None  # sequence number of the first bad event
    reason: str = ""


def verify_chain(events: Iterable[AuditEvent], start_hash: str = GENESIS) -> ChainCheck:
    """Walk events in sequence order; report the first edited, missing or moved event."""
    prev = start_hash
    expected_seq: int | None = None
    count = 0
    for event in events:
        count += 1
        if expected_seq is not None and event.seq != expected_seq:
            why = "missing" if event.seq > expected_seq else "duplicated or reordered"
            return ChainCheck(
                False,
                count,
                prev,
                event.seq,
                f"sequence jumps from {expected_seq - 1} to {event.seq}: events {why}",
            )
        if event.prev_hash != prev:
            return ChainCheck(
                False,
                count,
                prev,
                event.seq,
                "previous-hash link broken: an event before it was changed, removed or moved",
            )
        if event_hash(event) != event.hash:
            return ChainCheck(
                False,
                count,
                prev,
                event.seq,
                "its content does not match its hash: the event was edited",
            )
        prev = event.hash
        expected_seq = event.seq + 1
    return ChainCheck(True, count, prev)


class AuditLog(Protocol):
    """Where services record what they changed."""

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Append an event for the current actor."""
        ...


class _NullAudit:
    """Records nothing: REST clients (the server audits) and stores without governance."""

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Do nothing."""


NULL_AUDIT: AuditLog = _NullAudit()
