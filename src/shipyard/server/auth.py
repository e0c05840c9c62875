"""Who is calling, and may they: every route of the app depends on ``authorize``.

Without auth (loopback only) the caller is a single local user with every right, named by
the client's ``X-Shipyard-Actor`` header (``SHIPYARD_USER`` or the OS user). With
``--auth tokens`` every request needs ``Authorization: Bearer <token>``; the token's user
and role come from the store, and the route's rule below decides. Reads need ``viewer``
(``READS`` lists the POST routes that only read), writes ``member``; the routes in
``ELEVATED`` need more. A route with no rule is refused.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from shipyard.core.actor import _ACTOR, acting_as, set_request_role
from shipyard.core.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from shipyard.governance.models import Role
from shipyard.ui.session import check_csrf, session_secret
from shipyard.wire.schemas import ACTOR_HEADER

_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,250}$")


class LoginThrottle:
    """Failed authentications per client address in a sliding window; past the limit the
    address is refused (429) until its oldest failure leaves the window."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        """Refuse a client that failed too often lately.

        Raises:
            RateLimitedError: the client is throttled.
        """
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) >= self.limit:
                wait = max(1, int(self.window - (now - times[0])) + 1)
                raise RateLimitedError(
                    f"too many failed authentications from {client}; retry in {wait} s",
                    retry_after=wait,
                )

    def failed(self, client: str) -> int:
        """Count a failure; return how many this client has in the window."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures = {client: times}
            return len(times)


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a request."""

    name: str
    role: Role
    authenticated: bool = False


LOCAL_ACTOR = Actor(name="local", role=Role.ADMIN)

_MODEL = "/api/v1/models/{name}"
_MLFLOW = "/api/2.0/mlflow"
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
    ("POST", "/api/v1/runs/expire"): Role.ADMIN,
    ("POST", "/api/v1/spec/apply"): Role.ADMIN,
    ("GET", "/api/v1/users"): Role.ADMIN,
    ("POST", "/api/v1/users"): Role.ADMIN,
    ("GET", "/api/v1/users/{name}"): Role.ADMIN,
    ("PUT", "/api/v1/users/{name}"): Role.ADMIN,
    ("GET", "/api/v1/tokens"): Role.ADMIN,
    ("POST", "/api/v1/tokens"): Role.ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): Role.ADMIN,
    # MLflow's registry routes (the same rules as Shipyard's own).
    ("POST", _MLFLOW + "/registered-models/alias"): Role.APPROVER,
    ("DELETE", _MLFLOW + "/registered-models/alias"): Role.APPROVER,
    ("DELETE", _MLFLOW + "/model-versions/delete"): Role.APPROVER,
    ("POST", _MLFLOW + "/model-versions/transition-stage"): Role.APPROVER,
    # Moving a device group to a bundle is a production change, like moving the champion.
    ("POST", "/api/v1/edge/rollouts"): Role.APPROVER,
    ("PUT", "/api/v1/edge/rollouts/{group}"): Role.APPROVER,
    ("POST", "/api/v1/edge/rollouts/{group}/rollback"): Role.APPROVER,
    # The web UI's own actions (the same rules as the API routes they stand for).
    ("POST", "/models/{name}/versions/{version}/approve"): Role.APPROVER,
    ("POST", "/models/{name}/versions/{version}/reject"): Role.APPROVER,
}
#: Routes that use POST only to carry a query body: they read, so a viewer may call them.
READS = {
    ("POST", "/api/v1/runs/search"),
    ("POST", "/api/v1/pipeline-runs/step-counts"),
    ("POST", "/api/v1/lineage/edges/touching"),
    ("POST", "/api/v1/spec/plan"),
    ("POST", "/logout"),
    ("POST", _MLFLOW + "/runs/search"),
    ("POST", _MLFLOW + "/experiments/search"),
    ("POST", _MLFLOW + "/logged-models/search"),
    ("POST", _MLFLOW + "/registered-models/get-latest-versions"),
}
#: Open to anyone who can reach the server: load balancers probe it; the login page.
PUBLIC = {("GET", "/health"), ("GET", "/login"), ("POST", "/login")}
_READ = {"GET", "HEAD", "OPTIONS"}
_WRITE = {"POST", "PUT", "PATCH", "DELETE"}


def required_role(method: str, path: str) -> Role:
    """The least role that may call ``method path`` (a route's path template)."""
    rule = ELEVATED.get((method, path))
    if rule is not None:
        return rule
    if method in _READ or (method, path) in READS:
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
        from_cookie = False
        if not secret.strip() and (cookie := session_secret(request)) is not None:
            scheme, secret, from_cookie = "bearer", cookie, True
        if scheme.lower() != "bearer" or not secret.strip():
            where = (
                "MLFLOW_TRACKING_TOKEN"
                if request.url.path.startswith("/api/2.0/")
                else ("SHIPYARD_TOKEN")
            )
            raise AuthenticationError(
                f"authentication required: send Authorization: Bearer <token> ({where})"
            )
        if from_cookie and request.method in _WRITE and not _form_checked(path):
            check_csrf(request, None)
        client = request.client.host if request.client else "unknown"
        throttle: LoginThrottle = request.app.state.login_throttle
        throttle.check(client)
        identity = request.app.state.backend.governance.identity
        try:
            user = await run_in_threadpool(identity.authenticate, secret.strip())
        except AuthenticationError as exc:
            count = throttle.failed(client)
            await run_in_threadpool(_audit_failure, request, client, exc.message, count)
            raise
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
    set_request_role(actor.role)
    return actor


def _form_checked(path: str | None) -> bool:
    """UI form routes check the CSRF field themselves (the header is for scripts)."""
    return path is not None and not path.startswith("/api/")


def _audit_failure(request: Request, client: str, reason: str, count: int) -> None:
    """Record a failed authentication (up to the throttle's limit per window)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    if count > throttle.limit:
        return
    audit = request.app.state.backend.governance.audit
    with acting_as("anonymous"):
        audit.record(
            "auth.failed",
            f"client:{client}",
            {"reason": reason, "path": request.url.path, "throttled": count == throttle.limit},
        )


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
