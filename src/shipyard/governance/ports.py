"""What governance needs from a metadata store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, Unpack

from shipyard.core.audit import Anchor, AuditEntry, AuditEvent, AuditFilter, ChainCheck
from shipyard.governance.models import Approval, PromotionRequest, Role, Token, User
from shipyard.registry.models import ModelVersion


class AuditStore(Protocol):
    """The append-only chain of audit events."""

    def append(self, entries: list[AuditEntry]) -> list[AuditEvent]:
        """Add the next events in order, each linked to the one before, atomically."""
        ...

    def events(self, **filters: Unpack[AuditFilter]) -> list[AuditEvent]:
        """Events in sequence order, optionally from a time, for one object and what
        belongs to it, with an action prefix (``promotion.``), by one actor."""
        ...


class Transactions(Protocol):
    """Units of work on the metadata store: a change and its audit events commit together."""

    def atomic(self) -> AbstractContextManager[Any]:
        """Everything the stores write inside commits together or not at all."""
        ...

    def before_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` inside the open unit just before it commits; at once outside one."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the open unit has committed; at once outside one."""
        ...

    def unit_state(self) -> dict[str, Any] | None:
        """A scratch dict that lives as long as the open unit (None outside one): what a
        service gathers during the unit and writes once, just before it commits."""
        ...


class AuditAnchorStore(Protocol):
    """The chain's newest head, kept where the database cannot change it, and signed."""

    def read(self) -> Anchor | None:
        """The anchored head; None before the first event.

        Raises:
            StoreError: the anchor exists but its signature does not match.
        """
        ...

    def advance(self, seq: int, hash: str) -> None:
        """Record a newer head (an older one than the anchored is ignored)."""
        ...


class IdentityStore(Protocol):
    """Users and their API tokens."""

    def create_user(self, user: User) -> User:
        """Add a user; ConflictError if the name is taken."""
        ...

    def get_user(self, name: str) -> User:
        """A user; NotFoundError if unknown."""
        ...

    def list_users(self) -> list[User]:
        """Every user by name."""
        ...

    def update_user(self, name: str, *, role: Role, disabled: bool) -> User:
        """Change a user's role and whether they may sign in; NotFoundError if unknown."""
        ...

    def create_token(self, token: Token, secret_hash: str) -> Token:
        """Store a token's record and the hash of its secret."""
        ...

    def token_by_hash(self, secret_hash: str) -> Token | None:
        """The token whose secret hashes to ``secret_hash``."""
        ...

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens, newest first."""
        ...

    def revoke_token(self, token_id: str, when: int) -> Token:
        """Mark a token revoked; NotFoundError if unknown."""
        ...


class ApprovalStore(Protocol):
    """Promotion requests and the decisions on them."""

    def create_request(self, request: PromotionRequest) -> PromotionRequest:
        """Open a request; ConflictError if the version already has an open one."""
        ...

    def open_request(self, model: str, version: int) -> PromotionRequest | None:
        """The open request of a version, with its decisions."""
        ...

    def list_requests(self, model: str, version: int | None = None) -> list[PromotionRequest]:
        """Requests of a model (or version), newest first, with their decisions."""
        ...

    def add_decision(self, request_id: str, approval: Approval) -> None:
        """Record one approver's decision; ConflictError if they already decided."""
        ...

    def close_request(
        self, request_id: str, status: str, when: int, previous_champion: int | None
    ) -> bool:
        """Move an open request to ``status``; False if another caller closed it first."""
        ...


# What surfaces ask of governance: served by the services here, or by a Shipyard server
# through the REST adapters (which implement these by composition).


class AuditTrail(Protocol):
    """The audit log as surfaces use it."""

    def atomic(self) -> AbstractContextManager[Any]:
        """A unit of work: a change and its events commit together."""
        ...

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Record an event for the current actor."""
        ...

    def events(self, **filters: Unpack[AuditFilter]) -> list[AuditEvent]:
        """Events in order, filtered."""
        ...

    def verify(self) -> ChainCheck:
        """Walk the chain and hold it against the anchor."""
        ...


class Identity(Protocol):
    """Users and tokens as surfaces use them."""

    def create_user(self, name: str, role: str | Role) -> User:
        """Add a user with a role."""
        ...

    def get_user(self, name: str) -> User:
        """A user; NotFoundError if unknown."""
        ...

    def list_users(self) -> list[User]:
        """Every user."""
        ...

    def set_role(self, name: str, role: str | Role, *, disabled: bool = False) -> User:
        """Give a user another role, or disable them."""
        ...

    def create_token(
        self, user: str, name: str = "default", expires_in: str | None = None
    ) -> tuple[Token, str]:
        """A new token: its record and, shown once, its secret."""
        ...

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Token records (never secrets)."""
        ...

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token."""
        ...

    def authenticate(self, secret: str) -> User:
        """The user a token secret belongs to."""
        ...


class Approvals(Protocol):
    """Promotion requests and decisions as surfaces use them."""

    def request(
        self, name: str, version: int | str, *, to: str = "production", note: str = ""
    ) -> PromotionRequest:
        """Ask for a version's promotion."""
        ...

    def approve(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """Approve the open request (the caller from the context)."""
        ...

    def reject(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """Reject the open request."""
        ...

    def rollback(self, name: str, *, note: str = "") -> ModelVersion:
        """Give champion back to the version before the last promotion."""
        ...

    def requests(self, name: str, version: int | None = None) -> list[PromotionRequest]:
        """A model's requests, newest first."""
        ...
