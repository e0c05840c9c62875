"""Who is acting, with which role: context variables set by the surface that knows.

The CLI and SDK set the actor from ``SHIPYARD_USER`` or the OS user; the server sets actor
and role per request from the caller's token. Services read them to stamp audit events and
to check their own rules (break-glass needs an admin), so no surface passes a role in and
no signature carries the actor through every layer. A process with direct access to the
store (local mode) acts as an admin: it could change the database itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.core.roles import Role

_ACTOR: ContextVar[str | None] = ContextVar("shipyard_actor", default=None)
_ROLE: ContextVar[Role | None] = ContextVar("shipyard_role", default=None)
_FALLBACK = ["local"]


def current_actor() -> str:
    """The actor of the current request or process."""
    return _ACTOR.get() or _FALLBACK[0]


def set_process_actor(name: str) -> None:
    """The actor for everything in this process that sets no other (CLI, SDK)."""
    _FALLBACK[0] = name


def current_role() -> Role:
    """The role of the current request; a process on the store itself is an admin."""
    return _ROLE.get() or Role.ADMIN


@contextmanager
def acting_as(name: str, role: Role | None = None) -> Iterator[None]:
    """Run a block as ``name`` (a server request, a test), with ``role`` when known."""
    token = _ACTOR.set(name)
    role_token = _ROLE.set(role) if role is not None else None
    try:
        yield
    finally:
        if role_token is not None:
            _ROLE.reset(role_token)
        _ACTOR.reset(token)


def set_request_role(role: Role) -> None:
    """The role for the rest of this request's context (the server's auth sets it)."""
    _ROLE.set(role)


def require_role(needed: Role, what: str) -> None:
    """Refuse ``what`` unless the acting caller's role includes ``needed``.

    Raises:
        PermissionDeniedError: the role is too low.
    """
    role = current_role()
    if not role.allows(needed):
        raise PermissionDeniedError(
            f"{current_actor()} has role {role.value}; {what} needs {needed.value}",
            actor=current_actor(),
        )


def break_glass(reason: str | None, what: str) -> str:
    """Check an emergency action taken outside the normal flow: an admin, with a reason.

    Raises:
        PermissionDeniedError: the caller is not an admin.
        InvalidInputError: no reason was given.
    """
    require_role(
        Role.ADMIN,
        f"{what} is an admin's break-glass (promote with shipyard models request-promotion "
        "and approve, or roll back), which",
    )
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(f"{what} is break-glass: give a reason (--reason)")
    if len(text) > 2000:
        raise InvalidInputError("a break-glass reason is at most 2,000 characters")
    return text
