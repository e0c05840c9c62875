"""Routes of the model registry under /api/v1/models: thin translations to the registry service.

Package files travel as run artifacts (the tracking routes); these routes carry the
metadata, and every rule (numbering, aliases, lifecycle, deletion) runs here, on the server.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.registry.ports import ModelRegistry
from shipyard.server.auth import Actor, current_actor
from shipyard.server.jsonbody import JsonRoute
from shipyard.wire.schemas import (
    AliasTarget,
    CardEdit,
    ModelCreate,
    ModelList,
    ModelRead,
    ModelUpdate,
    TagValue,
    VersionCreate,
    VersionList,
    VersionRead,
    VersionUpdate,
)

router = APIRouter(prefix="/api/v1/models", tags=["models"], route_class=JsonRoute)


def _svc(request: Request) -> ModelRegistry:
    return request.app.state.backend.registry  # type: ignore[no-any-return]


@router.get("")
def list_models(request: Request) -> ModelList:
    """Every registered model."""
    return ModelList(models=[ModelRead.of(m) for m in _svc(request).list_models()])


@router.post("", status_code=201)
def create_model(body: ModelCreate, request: Request) -> ModelRead:
    """Create an empty registered model (registering a version creates one too)."""
    return ModelRead.of(
        _svc(request).create_model(body.name, description=body.description, tags=body.tags)
    )


@router.get("/{name}")
def get_model(name: str, request: Request) -> ModelRead:
    """A model with its tags, aliases and latest version."""
    return ModelRead.of(_svc(request).get_model(name))


@router.patch("/{name}")
def update_model(name: str, body: ModelUpdate, request: Request) -> ModelRead:
    """Change a model's description."""
    return ModelRead.of(_svc(request).update_model(name, body.description))


@router.put("/{name}/tags/{key}", status_code=204)
def set_model_tag(name: str, key: str, body: TagValue, request: Request) -> Response:
    """Set a model tag."""
    _svc(request).set_tag(name, None, key, body.value)
    return Response(status_code=204)


@router.delete("/{name}/tags/{key}", status_code=204)
def delete_model_tag(name: str, key: str, request: Request) -> Response:
    """Remove a model tag."""
    _svc(request).set_tag(name, None, key, None)
    return Response(status_code=204)


@router.post("/{name}/versions", status_code=201)
def register_version(
    name: str,
    body: VersionCreate,
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
) -> VersionRead:
    """Register the package logged at ``runs:/run_id/artifact_path`` as the next version.

    With authentication on, the version is recorded as created by the caller; the body's
    ``created_by`` only counts on a single-user (loopback, no auth) server.
    """
    creator = actor.name if actor.authenticated else (body.created_by or actor.name)
    mv = _svc(request).register(
        name,
        run_id=body.run_id,
        artifact_path=body.artifact_path,
        description=body.description,
        tags=body.tags,
        created_by=creator,
        data_profile=body.data_profile,
    )
    return VersionRead.of(mv)


@router.get("/{name}/versions")
def list_versions(name: str, request: Request, include_deleted: bool = False) -> VersionList:
    """Versions of a model, newest first."""
    found = _svc(request).list_versions(name, include_deleted)
    return VersionList(versions=[VersionRead.of(v) for v in found])


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: str, request: Request) -> VersionRead:
    """A live version (a deleted one is a 404 that says so)."""
    return VersionRead.of(_svc(request).get_version(name, version))


@router.patch("/{name}/versions/{version}")
def update_version(name: str, version: str, body: VersionUpdate, request: Request) -> VersionRead:
    """Change a version's description, or move it along its lifecycle."""
    svc = _svc(request)
    if body.state is not None:
        mv = svc.transition(name, version, body.state, reason=body.reason)
    else:
        mv = svc.get_version(name, version)
    if body.description is not None:
        mv = svc.update(name, version, description=body.description)
    return VersionRead.of(mv)


@router.patch("/{name}/versions/{version}/card")
def edit_card(name: str, version: str, body: CardEdit, request: Request) -> VersionRead:
    """Edit the people-written parts of the model card."""
    return VersionRead.of(_svc(request).edit_card(name, version, body.changes))


@router.put("/{name}/versions/{version}/tags/{key}", status_code=204)
def set_version_tag(
    name: str, version: str, key: str, body: TagValue, request: Request
) -> Response:
    """Set a version tag."""
    _svc(request).set_tag(name, version, key, body.value)
    return Response(status_code=204)


@router.delete("/{name}/versions/{version}/tags/{key}", status_code=204)
def delete_version_tag(name: str, version: str, key: str, request: Request) -> Response:
    """Remove a version tag."""
    _svc(request).set_tag(name, version, key, None)
    return Response(status_code=204)


@router.delete("/{name}/versions/{version}", status_code=204)
def delete_version(name: str, version: str, request: Request, force: bool = False) -> Response:
    """Delete a version; one in production or holding an alias needs ``?force=true``."""
    _svc(request).delete_version(name, version, force=force)
    return Response(status_code=204)


@router.put("/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasTarget, request: Request) -> VersionRead:
    """Point an alias at a version, moving it from any other.

    ``champion`` is what serving follows: it moves through approvals and rollback; moving
    it by hand is an admin's break-glass, audited with its reason.
    """
    return VersionRead.of(_svc(request).set_alias(name, alias, body.version, reason=body.reason))


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: str,
    alias: str,
    request: Request,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Remove an alias (``champion``: an admin's break-glass, with a reason)."""
    _svc(request).delete_alias(name, alias, reason=reason)
    return Response(status_code=204)
