"""Routes for users and tokens, the audit log, promotions and model governance fields."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from shipyard.bootstrap import Governance
from shipyard.core.jsonsafe import INT64_MAX
from shipyard.registry.ports import ModelRegistry
from shipyard.server.auth import Actor, current_actor
from shipyard.server.jsonbody import JsonRoute
from shipyard.wire.schemas import (
    AuditEventCreate,
    GovernanceUpdate,
    ModelRead,
    NoteBody,
    PromotionCreate,
    TokenCreate,
    UserCreate,
    UserUpdate,
    VersionRead,
    plain,
)

router = APIRouter(prefix="/api/v1", route_class=JsonRoute)
CallerDep = Annotated[Actor, Depends(current_actor)]


def _gov(request: Request) -> Governance:
    return request.app.state.backend.governance  # type: ignore[no-any-return]


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.backend.registry  # type: ignore[no-any-return]


@router.get("/whoami", tags=["auth"])
def whoami(actor: CallerDep, request: Request) -> dict[str, Any]:
    """The calling user (with token auth) or the local user."""
    if actor.authenticated:
        return plain(_gov(request).identity.get_user(actor.name))  # type: ignore[no-any-return]
    return {
        "name": actor.name,
        "role": actor.role.value,
        "disabled": False,
        "created_by": "local",
        "created_at": 0,
    }


@router.get("/users", tags=["auth"])
def list_users(request: Request) -> dict[str, Any]:
    """Every user (admin)."""
    return {"users": [plain(u) for u in _gov(request).identity.list_users()]}


@router.post("/users", status_code=201, tags=["auth"])
def create_user(body: UserCreate, request: Request) -> dict[str, Any]:
    """Add a user with a role (admin)."""
    return plain(_gov(request).identity.create_user(body.name, body.role))  # type: ignore[no-any-return]


@router.get("/users/{name}", tags=["auth"])
def get_user(name: str, request: Request) -> dict[str, Any]:
    """One user (admin)."""
    return plain(_gov(request).identity.get_user(name))  # type: ignore[no-any-return]


@router.put("/users/{name}", tags=["auth"])
def update_user(name: str, body: UserUpdate, request: Request) -> dict[str, Any]:
    """Give a user another role, or disable them (admin; audited)."""
    done = _gov(request).identity.set_role(name, body.role, disabled=body.disabled)
    return plain(done)  # type: ignore[no-any-return]


@router.get("/tokens", tags=["auth"])
def list_tokens(
    request: Request, user: Annotated[str | None, Query(max_length=250)] = None
) -> dict[str, Any]:
    """Token records, never secrets (admin)."""
    return {"tokens": [plain(t) for t in _gov(request).identity.list_tokens(user)]}


@router.post("/tokens", status_code=201, tags=["auth"])
def create_token(body: TokenCreate, request: Request) -> dict[str, Any]:
    """A new token; its secret is in this response only (admin)."""
    record, secret = _gov(request).identity.create_token(body.user, body.name, body.expires_in)
    return {"user": record.user, "token": secret, "record": plain(record)}


@router.delete("/tokens/{token_id}", tags=["auth"])
def revoke_token(token_id: str, request: Request) -> dict[str, Any]:
    """Revoke a token at once (admin)."""
    return plain(_gov(request).identity.revoke_token(token_id))  # type: ignore[no-any-return]


@router.get("/audit/events", tags=["audit"])
def audit_events(
    request: Request,
    since: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    object: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    actor: Annotated[str | None, Query(max_length=250)] = None,
    newest_first: bool = False,
) -> dict[str, Any]:
    """Audit events in chain order (or newest first), optionally by action prefix or actor."""
    found = _gov(request).audit.events(
        since=since,
        obj=object,
        limit=limit,
        action=action,
        actor=actor,
        newest_first=newest_first,
    )
    return {"events": [dataclasses.asdict(e) for e in found]}


#: What a client may report into the audit log itself: things that happen where it runs
#: (a model server starting or swapping versions, a dossier written and archived).
CLIENT_ACTIONS = ("deployment.", "dossier.")


@router.post("/audit/events", status_code=201, tags=["audit"])
def report_event(body: AuditEventCreate, request: Request) -> dict[str, Any]:
    """Record an event that happened at the client, as the calling user, server-timed."""
    from shipyard.core.errors import InvalidInputError

    if not body.action.startswith(CLIENT_ACTIONS):
        raise InvalidInputError(
            f"clients may report only {', '.join(a + '*' for a in CLIENT_ACTIONS)} events; "
            f"got {body.action!r} (the server records everything else itself)"
        )
    if len(json.dumps(body.payload)) > 65_536:
        raise InvalidInputError("an audit payload holds at most 64 KiB of JSON")
    _gov(request).audit.record(body.action, body.object, body.payload)
    return {"recorded": True}


@router.get("/audit/verify", tags=["audit"])
def audit_verify(request: Request) -> dict[str, Any]:
    """Walk the chain; report the first broken link."""
    return dataclasses.asdict(_gov(request).audit.verify())


@router.put("/models/{name}/governance", tags=["models"])
def set_governance(name: str, body: GovernanceUpdate, request: Request) -> ModelRead:
    """Use case, owner, risk tier, intended use, approvals required (admin)."""
    model = _registry(request).set_governance(name, **body.model_dump())
    return ModelRead.of(model)


@router.post(
    "/models/{name}/versions/{version}/promotion-requests", status_code=201, tags=["promotion"]
)
def request_promotion(
    name: str, version: str, body: PromotionCreate, request: Request
) -> dict[str, Any]:
    """Ask for a version's promotion (needs a passing gate report)."""
    return plain(_gov(request).approvals.request(name, version, to=body.to, note=body.note))  # type: ignore[no-any-return]


@router.get("/models/{name}/promotion-requests", tags=["promotion"])
def list_requests(
    name: str, request: Request, version: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None
) -> dict[str, Any]:
    """Promotion requests with their decisions, newest first."""
    return {"requests": [plain(r) for r in _gov(request).approvals.requests(name, version)]}


@router.post("/models/{name}/versions/{version}/approve", tags=["promotion"])
def approve(
    name: str, version: str, body: NoteBody, request: Request, actor: CallerDep
) -> dict[str, Any]:
    """Approve (approver role; never the version's author or trainer)."""
    done = _gov(request).approvals.approve(name, version, note=body.note)
    return plain(done)  # type: ignore[no-any-return]


@router.post("/models/{name}/versions/{version}/reject", tags=["promotion"])
def reject(
    name: str, version: str, body: NoteBody, request: Request, actor: CallerDep
) -> dict[str, Any]:
    """Reject a promotion request."""
    done = _gov(request).approvals.reject(name, version, note=body.note)
    return plain(done)  # type: ignore[no-any-return]


@router.post("/models/{name}/rollback", tags=["promotion"])
def rollback(name: str, body: NoteBody, request: Request, actor: CallerDep) -> VersionRead:
    """Give champion back to the previous version."""
    return VersionRead.of(_gov(request).approvals.rollback(name, note=body.note))


@router.post("/lineage", status_code=201, tags=["lineage"])
async def receive_lineage(request: Request) -> dict[str, Any]:
    """Take an OpenLineage event from another tool (the path Marquez uses): a RunEvent,
    JobEvent or DatasetEvent of spec 2-0-x, plain or gzip-compressed (the Python client's
    ``compression="gzip"``)."""
    from fastapi.concurrency import run_in_threadpool

    from shipyard.core.errors import InvalidInputError
    from shipyard.core.jsonsafe import parse_json
    from shipyard.pipelines.openlineage import check_event, event_edges, event_kind

    body = await request.body()
    if request.headers.get("content-encoding", "").strip().lower() == "gzip":
        body = _gunzip(body, request.app.state.settings.max_request_bytes)
    try:
        event = check_event(parse_json(body))
    except ValueError as exc:
        raise InvalidInputError(f"not an OpenLineage event: {exc}") from None
    parts = request.app.state.backend.pipelines
    edges = event_edges(event)
    await run_in_threadpool(parts.store.record_lineage_event, event, edges)
    run_id = (event.get("run") or {}).get("runId")
    return {"accepted": True, "kind": event_kind(event), "run_id": run_id, "edges": len(edges)}


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, inflated to at most ``limit`` bytes (a small bomb stays small)."""
    import zlib

    from shipyard.core.errors import InvalidInputError

    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise InvalidInputError(f"the body is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise InvalidInputError(f"the body inflates beyond {limit} bytes")
    return out


@router.post("/deployments/{name}/feedback", tags=["monitoring"])
async def feedback(name: str, request: Request) -> dict[str, Any]:
    """Ground-truth labels for logged predictions, keyed by the request id (and row)."""
    from fastapi.concurrency import run_in_threadpool

    from shipyard.core.errors import InvalidInputError

    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("labels"), list):
        raise InvalidInputError('the body must be {"labels": [{"request_id": ..., "label": ...}]}')
    service = request.app.state.backend.feedback
    done = await run_in_threadpool(service.submit, name, body["labels"])
    return done.to_dict()  # type: ignore[no-any-return]
