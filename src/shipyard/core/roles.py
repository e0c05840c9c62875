"""Roles, in core so that every capability can check the acting caller's role itself."""

from __future__ import annotations

from enum import StrEnum

from shipyard.core.errors import InvalidInputError


class Role(StrEnum):
    """Roles in increasing power; each includes the ones before it."""

    VIEWER = "viewer"
    MEMBER = "member"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order viewer < member < approver < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role includes ``needed``."""
        return self.rank >= needed.rank


def parse_role(value: object) -> Role:
    """A role from its name, or a clear error listing the valid ones."""
    try:
        return Role(str(value).lower())
    except ValueError:
        raise InvalidInputError(
            f"role must be one of {', '.join(r.value for r in Role)}; got {value!r}"
        ) from None
