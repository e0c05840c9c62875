"""Who is calling, and may they: every route of the app depends on ``authorize``.

Without auth (loopback only) the caller is a single local user with every right, named by
the client's ``X-Shipyard-Actor`` header (``SHIPYARD_USER`` or the OS user). With
``--auth tokens`` every request needs ``Authorization: Bearer <token>``; the token's user
and role come from the store, and the route's rule below decides. Reads need ``viewer``,
writes ``member``; the routes in ``ELEVATED`` need more. A route with no rule is refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from shipyard.core.actor import _ACTOR
from shipyard.core.errors import AuthenticationError, PermissionDeniedError
from shipyard.governance.models import Role
from shipyard.remote.client import ACTOR_HEADER

_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,250}$")


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a request."""

    name: str
    role: Role
    authenticated: bool = False


LOCAL_ACTOR = Actor(name="local", role=Role.ADMIN)

_MODEL = "/api/v1/models/{name}"
_VERSION = _MODEL + "/versions/{version}"
#: Routes that need more than the default (GET: viewer; other methods: member).
ELEVATED: dict[tuple[str, str], Role] = {
    ("PUT", _MODEL + "/aliases/{alias}"): Role.APPROVER,
    ("DELETE", _MODEL + "/aliases/{alias}"): Role.APPROVER,
    ("DELETE", _VERSION): Role.APPROVER,
    ("POST", _VERSION + "/approve"): Role.APPROVER,
    ("POST", _VERSION + "/reject"): Role.APPROVER,
    ("POST", _MODEL + "/rollback"): Role.APPROVER,
    ("PUT", _MODEL + "/governance"): Role.ADMIN,
    ("GET", "/api/v1/users"): Role.ADMIN,
    ("POST", "/api/v1/users"): Role.ADMIN,
    ("GET", "/api/v1/tokens"): Role.ADMIN,
    ("POST", "/api/v1/tokens"): Role.ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): Role.ADMIN,
}
#: Open to anyone who can reach the server: load balancers probe it.
PUBLIC = {("GET", "/health")}
_READ = {"GET", "HEAD", "OPTIONS"}
_WRITE = {"POST", "PUT", "PATCH", "DELETE"}


def required_role(method: str, path: str) -> Role:
    """The least role that may call ``method path`` (a route's path template)."""
    rule = ELEVATED.get((method, path))
    if rule is not None:
        return rule
    if method in _READ:
        return Role.VIEWER
    if method in _WRITE:
        return Role.MEMBER
    raise PermissionDeniedError(f"no access rule for {method} {path}")


async def authorize(request: Request) -> Actor:
    """Identify the caller, check the route's rule, and make the caller the acting user."""
    settings = request.app.state.settings
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if (request.method, path) in PUBLIC:
        return LOCAL_ACTOR if settings.auth != "tokens" else Actor("anonymous", Role.VIEWER)
    if settings.auth == "tokens":
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthenticationError(
                "authentication required: send Authorization: Bearer <token> (SHIPYARD_TOKEN)"
            )
        identity = request.app.state.backend.governance.identity
        user = await run_in_threadpool(identity.authenticate, secret.strip())
        actor = Actor(user.name, user.role, authenticated=True)
    else:
        claimed = request.headers.get(ACTOR_HEADER, "")
        actor = Actor(claimed if _NAME.match(claimed) else "local", Role.ADMIN)
    if path is not None:
        needed = required_role(request.method, path)
        if not actor.role.allows(needed):
            raise PermissionDeniedError(
                f"{actor.name} has role {actor.role.value}; {request.method} {path} needs "
                f"{needed.value}",
                actor=actor.name,
            )
    request.state.actor = actor
    # The request's own task: sync routes run in worker threads with a copy of it.
    _ACTOR.set(actor.name)
    return actor


def current_actor(request: Request) -> Actor:
    """The caller ``authorize`` identified for this request."""
    actor: Actor = getattr(request.state, "actor", LOCAL_ACTOR)
    return actor


def is_loopback(host: str) -> bool:
    """Tell whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: str) -> None:
    """Refuse to serve beyond loopback without authentication.

    Raises:
        PermissionDeniedError: the address is not loopback and auth is off.
    """
    if auth != "tokens" and not is_loopback(host):
        raise PermissionDeniedError(
            f"refusing to bind {host!r} without authentication: a non-loopback server must "
            "run with --auth tokens; bind 127.0.0.1 for local use",
            host=host,
        )
