"""Token auth for the model server, as the platform server does it (``--auth tokens``).

Every request but the health probes needs ``Authorization: Bearer <token>``; the token is
checked against the store's users (any role may score). A verdict is cached for a short
while per token hash, so scoring does not pay a database round trip per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.core.errors import AuthenticationError
from shipyard.server.limits import send_json_error

#: Probes a load balancer or Kubernetes sends without credentials.
PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})
_CACHE_SECONDS = 30.0


class TokenAuthMiddleware:
    """Refuse (401, JSON body) any non-probe request without a valid bearer token."""

    def __init__(self, app: ASGIApp, authenticate: Callable[[str], object]) -> None:
        self.app = app
        self.authenticate = authenticate
        self._cache: dict[str, float] = {}
        self._lock = threading.Lock()

    def _valid(self, secret: str) -> bool:
        key = hashlib.sha256(secret.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            if self._cache.get(key, 0.0) > now:
                return True
        try:
            self.authenticate(secret)
        except AuthenticationError:
            return False
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = now + _CACHE_SECONDS
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the bearer token of HTTP requests outside ``PUBLIC_PATHS``."""
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope.get("headers", []))
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and secret.strip():
            from anyio import to_thread

            if await to_thread.run_sync(self._valid, secret.strip()):
                await self.app(scope, receive, send)
                return
        await _refuse(send)


async def _refuse(send: Any) -> None:
    await send_json_error(
        send,
        401,
        {"error": "authentication required: send Authorization: Bearer <token>"},
        ((b"www-authenticate", b"Bearer"),),
    )
