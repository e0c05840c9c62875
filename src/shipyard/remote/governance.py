"""Governance over HTTP: the server applies every rule; these clients only ask."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Unpack

from shipyard.core.audit import AuditEvent, AuditFilter, ChainCheck
from shipyard.governance.models import Approval, PromotionRequest, Role, Token, User
from shipyard.registry.models import ModelVersion
from shipyard.registry.service import check_version
from shipyard.remote.client import RestClient, json_body, seg
from shipyard.wire.schemas import (
    AuditEventCreate,
    NoteBody,
    PromotionCreate,
    TokenCreate,
    UserCreate,
    UserUpdate,
    VersionRead,
)


def event_of(data: dict[str, Any]) -> AuditEvent:
    """An AuditEvent from its JSON form."""
    return AuditEvent(**data)


def request_of(data: dict[str, Any]) -> PromotionRequest:
    """A PromotionRequest from its JSON form."""
    fields = dict(data)
    fields["approvals"] = [Approval(**a) for a in data.get("approvals", [])]
    return PromotionRequest(**fields)


class RestAudit:
    """The server's audit log over HTTP (AuditTrail); clients report only what happens
    where they run."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def atomic(self) -> AbstractContextManager[Any]:
        """Nothing to join here: the server makes each change and its event in one unit."""
        return nullcontext()

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """POST /api/v1/audit/events: the server records it as the caller, at its time."""
        body = AuditEventCreate(action=action, object=obj, payload=payload or {})
        self.client.json("POST", "/api/v1/audit/events", idempotent=False, **json_body(body))

    def events(self, **filters: Unpack[AuditFilter]) -> list[AuditEvent]:
        """GET /api/v1/audit/events."""
        names = {"obj": "object"}  # the query parameter's name on the server
        pairs = [(names.get(k, k), v) for k, v in filters.items()]
        pairs = [(k, "true" if v is True else v) for k, v in pairs if v is not False]
        params = {k: str(v) for k, v in pairs if v is not None}
        data = self.client.json("GET", "/api/v1/audit/events", params=params)
        return [event_of(e) for e in data["events"]]

    def verify(self) -> ChainCheck:
        """GET /api/v1/audit/verify."""
        return ChainCheck(**self.client.json("GET", "/api/v1/audit/verify"))


class RestIdentity:
    """Users and tokens managed through the server (Identity; the admin role)."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def create_user(self, name: str, role: str | Role) -> User:
        """POST /api/v1/users."""
        body = UserCreate(name=name, role=str(role))
        data = self.client.json("POST", "/api/v1/users", idempotent=False, **json_body(body))
        return User(**{**data, "role": Role(data["role"])})

    def list_users(self) -> list[User]:
        """GET /api/v1/users."""
        data = self.client.json("GET", "/api/v1/users")
        return [User(**{**u, "role": Role(u["role"])}) for u in data["users"]]

    def get_user(self, name: str) -> User:
        """GET /api/v1/users/{name}."""
        data = self.client.json("GET", f"/api/v1/users/{seg(name)}")
        return User(**{**data, "role": Role(data["role"])})

    def set_role(self, name: str, role: str | Role, *, disabled: bool = False) -> User:
        """PUT /api/v1/users/{name}."""
        body = UserUpdate(role=str(role), disabled=disabled)
        data = self.client.json("PUT", f"/api/v1/users/{seg(name)}", **json_body(body))
        return User(**{**data, "role": Role(data["role"])})

    def create_token(
        self, user: str, name: str = "default", expires_in: str | None = None
    ) -> tuple[Token, str]:
        """POST /api/v1/tokens."""
        body = TokenCreate(user=user, name=name, expires_in=expires_in)
        data = self.client.json("POST", "/api/v1/tokens", idempotent=False, **json_body(body))
        return Token(**data["record"]), str(data["token"])

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """GET /api/v1/tokens."""
        params = {"user": user} if user else {}
        data = self.client.json("GET", "/api/v1/tokens", params=params)
        return [Token(**t) for t in data["tokens"]]

    def revoke_token(self, token_id: str) -> Token:
        """DELETE /api/v1/tokens/{id}."""
        return Token(**self.client.json("DELETE", f"/api/v1/tokens/{seg(token_id)}"))

    def authenticate(self, secret: str) -> User:
        """GET /api/v1/whoami with the given token."""
        data = self.client.json(
            "GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}
        )
        return User(**{**data, "role": Role(data["role"])})


class RestApprovals:
    """Promotion requests and decisions (Approvals), decided by the server."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def _version(self, name: str, version: int | str) -> str:
        return f"/api/v1/models/{seg(name)}/versions/{check_version(version)}"

    def request(
        self, name: str, version: int | str, *, to: str = "production", note: str = ""
    ) -> PromotionRequest:
        """POST .../promotion-requests."""
        body = PromotionCreate(to=to, note=note)
        data = self.client.json(
            "POST",
            f"{self._version(name, version)}/promotion-requests",
            idempotent=False,
            **json_body(body),
        )
        return request_of(data)

    def _decide(self, name: str, version: int | str, decision: str, note: str) -> PromotionRequest:
        data = self.client.json(
            "POST",
            f"{self._version(name, version)}/{decision}",
            idempotent=False,
            **json_body(NoteBody(note=note)),
        )
        return request_of(data)

    def approve(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """POST .../approve (the server checks the caller's role)."""
        return self._decide(name, version, "approve", note)

    def reject(self, name: str, version: int | str, *, note: str = "") -> PromotionRequest:
        """POST .../reject."""
        return self._decide(name, version, "reject", note)

    def rollback(self, name: str, *, note: str = "") -> ModelVersion:
        """POST /api/v1/models/{name}/rollback."""
        data = self.client.json(
            "POST",
            f"/api/v1/models/{seg(name)}/rollback",
            idempotent=False,
            **json_body(NoteBody(note=note)),
        )
        return VersionRead.model_validate(data).domain()

    def requests(self, name: str, version: int | None = None) -> list[PromotionRequest]:
        """GET /api/v1/models/{name}/promotion-requests."""
        params = {"version": str(version)} if version is not None else {}
        data = self.client.json(
            "GET", f"/api/v1/models/{seg(name)}/promotion-requests", params=params
        )
        return [request_of(r) for r in data["requests"]]
