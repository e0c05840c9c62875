"""SQL stores for governance: the audit chain, users and tokens, approvals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Unpack

from sqlalchemy import Connection, Engine, Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from shipyard.core.audit import GENESIS, AuditEntry, AuditEvent, AuditFilter, event_hash
from shipyard.core.errors import ConflictError, NotFoundError, StoreError
from shipyard.governance.models import Approval, PromotionRequest, Role, Token, User
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing

_AUDIT_LOCK_KEY = 0x5348495041554454  # "SHIPAUDT": serialises appends on PostgreSQL


@contextmanager
def _unique(conflict: ConflictError) -> Iterator[None]:
    """Turn a unique-key violation (wrapped by ``writing``) into ``conflict``."""
    try:
        yield
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise conflict from None
        raise


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        id=row.id,
        time=int(row.time),
        actor=row.actor,
        action=row.action,
        object=row.object,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SqlAuditStore:
    """The audit chain in one table; appends are serialised so the chain never forks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, entries: list[AuditEntry]) -> list[AuditEvent]:
        """Link new events to the last one inside one write transaction (one lock, one
        read of the head and one insert for all of them)."""
        if not entries:
            return []
        with writing(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
            last = conn.execute(
                select(t.audit_events.c.seq, t.audit_events.c.hash)
                .order_by(t.audit_events.c.seq.desc())
                .limit(1)
            ).first()
            seq, prev = (int(last.seq) + 1, last.hash) if last is not None else (1, GENESIS)
            events = []
            for entry in entries:
                event = AuditEvent(
                    seq,
                    entry.id,
                    entry.time,
                    entry.actor,
                    entry.action,
                    entry.object,
                    entry.payload,
                    prev,
                )
                event = AuditEvent(**{**event.__dict__, "hash": event_hash(event)})
                events.append(event)
                seq, prev = seq + 1, event.hash
            conn.execute(
                insert(t.audit_events),
                [
                    {
                        "seq": e.seq,
                        "id": e.id,
                        "time": e.time,
                        "actor": e.actor,
                        "action": e.action,
                        "object": e.object,
                        "payload": json.dumps(e.payload, sort_keys=True, ensure_ascii=False),
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in events
                ],
            )
        return events

    def events(self, **filters: Unpack[AuditFilter]) -> list[AuditEvent]:
        """Events in sequence order (or newest first), filtered in SQL."""
        since, obj, limit = filters.get("since"), filters.get("obj"), filters.get("limit")
        action, actor = filters.get("action"), filters.get("actor")
        newest_first = filters.get("newest_first", False)
        seq = t.audit_events.c.seq
        query = select(t.audit_events).order_by(seq.desc() if newest_first else seq)
        if action:
            query = query.where(t.audit_events.c.action.startswith(action, autoescape=True))
        if actor:
            query = query.where(t.audit_events.c.actor == actor)
        if since is not None:
            query = query.where(t.audit_events.c.time >= since)
        if obj is not None:
            # The object and what belongs to it: models:/fraud covers /3 and @champion.
            col = t.audit_events.c.object
            query = query.where(
                (col == obj)
                | col.startswith(obj + "/", autoescape=True)
                | col.startswith(obj + "@", autoescape=True)
            )
        if limit is not None:
            query = query.limit(limit)
        with reading(self.engine) as conn:
            return [_event(r) for r in conn.execute(query)]


def _user(row: Row[Any]) -> User:
    return User(row.name, Role(row.role), bool(row.disabled), row.created_by, int(row.created_at))


def _token(row: Row[Any]) -> Token:
    return Token(row.id, row.user, row.name, int(row.created_at), row.expires_at, row.revoked_at)


class SqlIdentityStore:
    """Users and API tokens (only the sha256 of a token's secret is stored)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_user(self, user: User) -> User:
        """Insert a user."""
        taken = ConflictError(f"user {user.name!r} already exists", user=user.name)
        with _unique(taken), writing(self.engine) as conn:
            conn.execute(
                insert(t.users).values(
                    name=user.name,
                    role=user.role.value,
                    disabled=user.disabled,
                    created_by=user.created_by,
                    created_at=user.created_at,
                )
            )
        return user

    def get_user(self, name: str) -> User:
        """A user by name."""
        with reading(self.engine) as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"user {name!r} does not exist", user=name)
        return _user(row)

    def list_users(self) -> list[User]:
        """Every user."""
        with reading(self.engine) as conn:
            return [_user(r) for r in conn.execute(select(t.users).order_by(t.users.c.name))]

    def update_user(self, name: str, *, role: Role, disabled: bool) -> User:
        """Change a user's role and whether they may sign in."""
        with writing(self.engine) as conn:
            done = conn.execute(
                update(t.users)
                .where(t.users.c.name == name)
                .values(role=role.value, disabled=disabled)
            )
        if done.rowcount == 0:
            raise NotFoundError(f"user {name!r} does not exist", user=name)
        return self.get_user(name)

    def create_token(self, token: Token, secret_hash: str) -> Token:
        """Insert a token record."""
        with writing(self.engine) as conn:
            conn.execute(
                insert(t.api_tokens).values(
                    id=token.id,
                    user=token.user,
                    name=token.name,
                    secret_hash=secret_hash,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    revoked_at=None,
                )
            )
        return token

    def token_by_hash(self, secret_hash: str) -> Token | None:
        """One indexed read."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(t.api_tokens).where(t.api_tokens.c.secret_hash == secret_hash)
            ).first()
        return _token(row) if row is not None else None

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens, newest first."""
        query = select(t.api_tokens).order_by(t.api_tokens.c.created_at.desc())
        if user is not None:
            query = query.where(t.api_tokens.c.user == user)
        with reading(self.engine) as conn:
            return [_token(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: str, when: int) -> Token:
        """Stamp the revocation time (kept, not deleted, for the record)."""
        with writing(self.engine) as conn:
            conn.execute(
                update(t.api_tokens)
                .where(t.api_tokens.c.id == token_id, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=when)
            )
            row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"token {token_id} does not exist", token=token_id)
        return _token(row)


class SqlApprovalStore:
    """Promotion requests and approvals."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _decisions(self, conn: Connection, request_id: str) -> list[Approval]:
        rows = conn.execute(
            select(t.approvals)
            .where(t.approvals.c.request_id == request_id)
            .order_by(t.approvals.c.created_at)
        )
        return [Approval(r.approver, r.decision, r.note, int(r.created_at)) for r in rows]

    def _request(self, conn: Connection, row: Row[Any]) -> PromotionRequest:
        return PromotionRequest(
            id=row.id,
            model=row.model,
            version=int(row.version),
            target=row.target,
            status=row.status,
            requested_by=row.requested_by,
            note=row.note,
            created_at=int(row.created_at),
            gate_report=row.gate_report,
            previous_champion=row.previous_champion,
            decided_at=row.decided_at,
            approvals=self._decisions(conn, row.id),
        )

    def create_request(self, request: PromotionRequest) -> PromotionRequest:
        """Insert an open request unless the version has one already."""
        with writing(self.engine) as conn:
            existing = conn.execute(
                select(t.promotion_requests.c.id).where(
                    t.promotion_requests.c.model == request.model,
                    t.promotion_requests.c.version == request.version,
                    t.promotion_requests.c.status == "open",
                )
            ).first()
            if existing is not None:
                raise ConflictError(
                    f"version {request.version} of {request.model!r} already has an open "
                    f"promotion request ({existing.id})",
                    request=existing.id,
                )
            conn.execute(
                insert(t.promotion_requests).values(
                    id=request.id,
                    model=request.model,
                    version=request.version,
                    target=request.target,
                    status=request.status,
                    requested_by=request.requested_by,
                    note=request.note,
                    gate_report=request.gate_report,
                    previous_champion=None,
                    created_at=request.created_at,
                    decided_at=None,
                )
            )
        return request

    def open_request(self, model: str, version: int) -> PromotionRequest | None:
        """The open request of a version."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(t.promotion_requests).where(
                    t.promotion_requests.c.model == model,
                    t.promotion_requests.c.version == version,
                    t.promotion_requests.c.status == "open",
                )
            ).first()
            return self._request(conn, row) if row is not None else None

    def list_requests(self, model: str, version: int | None = None) -> list[PromotionRequest]:
        """Requests, newest first."""
        query = (
            select(t.promotion_requests)
            .where(t.promotion_requests.c.model == model)
            .order_by(t.promotion_requests.c.created_at.desc(), t.promotion_requests.c.id.desc())
        )
        if version is not None:
            query = query.where(t.promotion_requests.c.version == version)
        with reading(self.engine) as conn:
            return [self._request(conn, r) for r in conn.execute(query).all()]

    def add_decision(self, request_id: str, approval: Approval) -> None:
        """Insert a decision; one per approver and request."""
        taken = ConflictError(
            f"{approval.approver} already decided on request {request_id}", request=request_id
        )
        with _unique(taken), writing(self.engine) as conn:
            conn.execute(
                insert(t.approvals).values(
                    request_id=request_id,
                    approver=approval.approver,
                    decision=approval.decision,
                    note=approval.note,
                    created_at=approval.created_at,
                )
            )

    def close_request(
        self, request_id: str, status: str, when: int, previous_champion: int | None
    ) -> bool:
        """Compare-and-set from open: exactly one caller closes a request."""
        with writing(self.engine) as conn:
            result = conn.execute(
                update(t.promotion_requests)
                .where(
                    t.promotion_requests.c.id == request_id, t.promotion_requests.c.status == "open"
                )
                .values(status=status, decided_at=when, previous_champion=previous_champion)
            )
            return bool(result.rowcount == 1)
