"""The audit log's record and its hash chain, shared by the writer and the verifier.

Each event's hash is sha256 over its canonical JSON (sequence number, id, time, actor,
action, object, payload and the previous event's hash). Editing, deleting, inserting or
reordering any event breaks a link that ``verify_chain`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

GENESIS = "0" * 64


class AuditFilter(TypedDict, total=False):
    """Which events to read: one definition for the port, the service, the store and the
    REST client (each takes these as keyword arguments)."""

    since: int | None  # ms since the epoch
    obj: str | None  # an object and what belongs to it: models:/fraud covers /3 and @champion
    limit: int | None
    action: str | None  # a prefix: "promotion." matches every promotion event
    actor: str | None
    newest_first: bool


@dataclass(frozen=True)
class AuditEntry:
    """An event to append: what happened, to what, by whom, when (the chain adds the rest)."""

    id: str
    time: int
    actor: str
    action: str
    object: str
    payload: dict[str, Any]


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
    anchored: int | None = None  # the sequence number the signed anchor vouches for


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


@dataclass(frozen=True)
class Anchor:
    """The chain's head as it was last written, kept (and signed) outside the database."""

    seq: int
    hash: str
    time: int


def check_anchor(check: ChainCheck, anchor: Anchor | None, hash_at: dict[int, str]) -> ChainCheck:
    """A chain that walks clean must still reach the anchored head, with the same hash.

    Catches what a chain alone cannot: the newest events cut off, every event deleted, or
    the chain rewritten with recomputed hashes.
    """
    if not check.ok:
        return check
    if anchor is None:
        if check.events == 0:
            return check
        return ChainCheck(
            False,
            check.events,
            check.head,
            None,
            "the signed anchor is missing: it was deleted, or nothing was recorded since "
            "this store was upgraded (the next recorded event anchors the chain again)",
        )
    if check.events == 0 or max(hash_at, default=0) < anchor.seq:
        last = max(hash_at, default=0)
        return ChainCheck(
            False,
            check.events,
            check.head,
            last + 1,
            f"events after {last} are missing: the signed anchor says the chain reached "
            f"event {anchor.seq}",
            anchor.seq,
        )
    if hash_at.get(anchor.seq) != anchor.hash:
        return ChainCheck(
            False,
            check.events,
            check.head,
            anchor.seq,
            "the chain was rewritten: its hash differs from the one the signed anchor holds",
            anchor.seq,
        )
    return ChainCheck(True, check.events, check.head, anchored=anchor.seq)


class AuditLog(Protocol):
    """Where services record what they changed."""

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Append an event for the current actor (inside ``atomic``, when it commits)."""
        ...

    def atomic(self) -> AbstractContextManager[Any]:
        """A unit in which the changes made and the events recorded commit together."""
        ...


class _NullAudit:
    """Records nothing: REST clients (the server audits) and stores without governance."""

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Do nothing."""

    def atomic(self) -> AbstractContextManager[Any]:
        """No unit: each store write commits on its own."""
        return nullcontext()


NULL_AUDIT: AuditLog = _NullAudit()
