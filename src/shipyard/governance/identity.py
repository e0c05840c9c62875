"""Users, roles and API tokens: create, revoke, and authenticate a bearer token."""

from __future__ import annotations

import hashlib
import re
import secrets

from shipyard.core.actor import current_actor
from shipyard.core.audit import AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.governance.models import Role, Token, User, parse_role
from shipyard.governance.ports import IdentityStore

#: Prefix that makes a leaked token easy to recognise (and to scan for in repositories).
TOKEN_PREFIX = "shy_"  # noqa: S105 - a public prefix, not a secret
_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def hash_secret(secret: str) -> str:
    """sha256 of a token secret (256 random bits: a fast hash is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> int:
    """Milliseconds from ``30d``, ``12h``, ``90m`` or ``2w``."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInputError(f"duration must look like 30d, 12h, 90m or 2w; got {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


DAY_MS = 86_400_000
#: A token without an expiry given lives 90 days; none lives longer than a year.
DEFAULT_TOKEN_LIFETIME_MS = 90 * DAY_MS
MAX_TOKEN_LIFETIME_MS = 365 * DAY_MS


class IdentityService:
    """Users and tokens of a store, every change audited."""

    def __init__(self, store: IdentityStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    def create_user(self, name: str, role: str | Role) -> User:
        """Add a user with a role."""
        user = User(
            check_name(name, "user name"), parse_role(role), False, current_actor(), now_ms()
        )
        with self.audit.atomic():
            self.store.create_user(user)
            self.audit.record("user.created", f"user:{user.name}", {"role": user.role.value})
        return user

    def list_users(self) -> list[User]:
        """Every user."""
        return self.store.list_users()

    def get_user(self, name: str) -> User:
        """A user; NotFoundError if unknown."""
        return self.store.get_user(name)

    def set_role(self, name: str, role: str | Role, *, disabled: bool = False) -> User:
        """Give a user another role, or disable them (their tokens stop working)."""
        before = self.store.get_user(name)
        wanted = parse_role(role)
        with self.audit.atomic():
            user = self.store.update_user(before.name, role=wanted, disabled=disabled)
            self.audit.record(
                "user.role_changed",
                f"user:{user.name}",
                {
                    "from": before.role.value,
                    "to": user.role.value,
                    "disabled": user.disabled,
                },
            )
        return user

    def create_token(
        self, user: str, name: str = "default", expires_in: str | None = None
    ) -> tuple[Token, str]:
        """A new token for ``user``; the secret is returned once and never stored."""
        owner = self.store.get_user(check_name(user, "user name"))
        if owner.disabled:
            raise PermissionDeniedError(f"user {owner.name!r} is disabled")
        created = now_ms()
        lifetime = parse_duration(expires_in) if expires_in else DEFAULT_TOKEN_LIFETIME_MS
        if lifetime > MAX_TOKEN_LIFETIME_MS:
            raise InvalidInputError(
                f"a token lives at most {MAX_TOKEN_LIFETIME_MS // DAY_MS} days; got "
                f"{expires_in!r} (create a new one before it expires)"
            )
        expires = created + lifetime
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(new_id("tok"), owner.name, check_name(name, "token name"), created, expires)
        with self.audit.atomic():
            self.store.create_token(token, hash_secret(secret))
            self.audit.record(
                "token.created",
                f"token:{token.id}",
                {"user": owner.name, "name": token.name, "expires_at": expires},
            )
        return token, secret

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Token records (never secrets)."""
        return self.store.list_tokens(user)

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token at once."""
        with self.audit.atomic():
            token = self.store.revoke_token(token_id, now_ms())
            self.audit.record("token.revoked", f"token:{token.id}", {"user": token.user})
        return token

    def sign_out(self, secret: str) -> Token | None:
        """Revoke the token whose secret this is (a UI session at logout); None if unknown."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        token = self.store.token_by_hash(hash_secret(secret))
        if token is None or token.revoked_at is not None:
            return None
        return self.revoke_token(token.id)

    def authenticate(self, secret: str) -> User:
        """The user a bearer token belongs to; AuthenticationError says why not.

        Tokens created before lifetimes were capped (no expiry) are refused once older than
        the maximum lifetime.
        """
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            raise AuthenticationError("invalid token")
        token = self.store.token_by_hash(hash_secret(secret))
        if token is None:
            raise AuthenticationError("invalid token")
        if token.revoked_at is not None:
            raise AuthenticationError("token revoked")
        expires = token.expires_at or token.created_at + MAX_TOKEN_LIFETIME_MS
        if expires <= now_ms():
            raise AuthenticationError("token expired")
        user = self.store.get_user(token.user)
        if user.disabled:
            raise AuthenticationError(f"user {user.name!r} is disabled")
        return user
