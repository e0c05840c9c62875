"""Who is calling. Local mode has one user; token auth plugs in here (governance issue)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import Request

from shipyard.core.errors import PermissionDeniedError


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a request."""

    name: str
    role: str


LOCAL_ACTOR = Actor(name="local", role="admin")


def current_actor(request: Request) -> Actor:
    """Resolve the caller; every route depends on this, so auth covers the whole app."""
    actor: Actor = request.app.state.actor
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
        PermissionDeniedError: the address is not loopback and auth is off, or the auth
            mode is not available in this version.
    """
    if auth == "tokens":
        raise PermissionDeniedError(
            "SHIPYARD_AUTH=tokens is not available in this version yet; bind to 127.0.0.1 "
            "(local, single user) until token auth ships",
            auth=auth,
        )
    if not is_loopback(host):
        raise PermissionDeniedError(
            f"refusing to bind {host!r} without authentication: a non-loopback server must "
            "run with --auth tokens; bind 127.0.0.1 for local use",
            host=host,
        )
