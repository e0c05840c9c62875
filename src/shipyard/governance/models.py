"""Governance records: users, tokens, roles, promotion requests and approvals."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.core.roles import Role, parse_role

__all__ = ["Approval", "PromotionRequest", "Role", "Token", "User", "parse_role"]


@dataclass(frozen=True)
class User:
    """A person or service account of a server with token auth."""

    name: str
    role: Role
    disabled: bool
    created_by: str
    created_at: int


@dataclass(frozen=True)
class Token:
    """An API token's record (the secret itself is shown once and never stored)."""

    id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None


@dataclass(frozen=True)
class Approval:
    """One approver's decision on a promotion request."""

    approver: str
    decision: str  # "approve" or "reject"
    note: str
    created_at: int


@dataclass(frozen=True)
class PromotionRequest:
    """A request to move a version to production, and its decisions."""

    id: str
    model: str
    version: int
    target: str
    status: str  # "open", "approved", "rejected"
    requested_by: str
    note: str
    created_at: int
    gate_report: str | None = None
    previous_champion: int | None = None
    decided_at: int | None = None
    approvals: list[Approval] = field(default_factory=list)
