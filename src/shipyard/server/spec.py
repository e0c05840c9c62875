"""The project spec through the server: plan, apply (an admin's act, one transaction
here), export, drift and hand edits. Documents are checked again here, as a file would be."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from shipyard.server.jsonbody import JsonRoute
from shipyard.spec.loader import recheck
from shipyard.spec.service import SpecService
from shipyard.wire.schemas import (
    DriftWatch,
    SpecDocuments,
    SpecDocumentWire,
    SpecEdit,
    SpecRequest,
)

router = APIRouter(prefix="/api/v1/spec", tags=["spec"], route_class=JsonRoute)


def _service(request: Request) -> SpecService:
    return request.app.state.backend.spec  # type: ignore[no-any-return]


def _docs(body: SpecRequest) -> list[Any]:
    return recheck([d.model_dump() for d in body.documents])


@router.get("/schema")
def schema() -> dict[str, Any]:
    """The JSON Schema of a spec document (``# yaml-language-server: $schema=...``)."""
    from shipyard.spec.documents import document_schema

    return document_schema()


@router.post("/plan")
async def plan(body: SpecRequest, request: Request) -> dict[str, Any]:
    """What apply would change (nothing is written)."""
    found = await run_in_threadpool(_service(request).plan, _docs(body), prune=body.prune)
    return found.to_dict()


@router.post("/apply")
async def apply(body: SpecRequest, request: Request) -> dict[str, Any]:
    """Make every change in one transaction, or none; every change audited."""
    done = await run_in_threadpool(_service(request).apply, _docs(body), prune=body.prune)
    return done.to_dict()


@router.get("/export")
def export(request: Request) -> SpecDocuments:
    """The live state as documents."""
    found = _service(request).export()
    return SpecDocuments(
        documents=[SpecDocumentWire(kind=d.kind, name=d.name, body=d.body) for d in found]
    )


@router.get("/drift")
def drift(request: Request) -> dict[str, Any]:
    """What changed outside the spec since the last apply, by whom and when."""
    return {"drift": [d.to_dict() for d in _service(request).drift()]}


@router.post("/drift/watch")
async def watch_drift(body: DriftWatch, request: Request) -> dict[str, Any]:
    """Judge drift as a window of the spec-drift monitor; its alert notifies from here."""
    return await run_in_threadpool(_service(request).watch_drift, body.notify)


@router.patch("/objects/{kind}/{name}")
def edit(kind: str, name: str, body: SpecEdit, request: Request) -> dict[str, Any]:
    """Change fields of a declared object by hand (audited; reported as drift)."""
    return {"kind": kind, "name": name, "body": _service(request).edit(kind, name, body.changes)}
