"""Browser sessions and CSRF tokens for the web UI.

A login exchanges an API token for a session token of its own (12 hours, revocable, in the
audit log like any token), kept in an HttpOnly, SameSite=Strict cookie. Every
state-changing request a browser makes carries a CSRF token: derived from the session in
server mode, or a random double-submit cookie in local mode, where a page on another site
could otherwise post to a server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from shipyard.core.errors import PermissionDeniedError

SESSION_COOKIE = "shipyard_session"
CSRF_COOKIE = "shipyard_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_LIFETIME = "12h"
SESSION_SECONDS = 12 * 3600


def session_secret(request: Request) -> str | None:
    """The session token the browser sent, if any."""
    value = request.cookies.get(SESSION_COOKIE, "")
    return value if 0 < len(value) <= 200 else None


def csrf_token(request: Request) -> str:
    """The CSRF token pages embed in forms and scripts send as ``X-CSRF-Token``.

    Bound to the session when there is one; otherwise the double-submit cookie's value
    (minted here when the browser has none yet; ``remember_csrf`` sets it).
    """
    session = session_secret(request)
    if session is not None:
        return hmac.new(session.encode(), b"shipyard-csrf", hashlib.sha256).hexdigest()
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) == 43:
        return existing
    minted: str = getattr(request.state, "minted_csrf", "") or secrets.token_urlsafe(32)
    request.state.minted_csrf = minted
    return minted


def remember_csrf(request: Request, response: Response) -> None:
    """Set the double-submit cookie when this request minted a token."""
    minted = getattr(request.state, "minted_csrf", None)
    if minted:
        response.set_cookie(
            CSRF_COOKIE,
            minted,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a state-changing browser request without the right CSRF token.

    Raises:
        PermissionDeniedError: the token is missing or wrong.
    """
    expected = None
    if session_secret(request) is not None or len(request.cookies.get(CSRF_COOKIE, "")) == 43:
        expected = csrf_token(request)
    given = sent or request.headers.get(CSRF_HEADER, "")
    if expected is None or not given or not hmac.compare_digest(given, expected):
        raise PermissionDeniedError(
            "missing or wrong CSRF token: reload the page and try again", check="csrf"
        )


def set_session(request: Request, response: Response, secret: str) -> None:
    """Keep a new session token in the browser."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    """Forget the session in the browser."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
