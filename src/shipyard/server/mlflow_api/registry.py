"""MLflow's model registry routes as translations to the registry service.

Registering through MLflow's client runs Shipyard's registration: the package is read from
the run's artifacts, checked (skops types against the allow-list, flavour classes from a
fixed table) and every file's hash recorded. Governance still holds: aliases need an
approver and ``champion`` moves only through approvals (or an admin's break-glass), so
``set_registered_model_alias(..., "champion", ...)`` from a member is a 403 that says why.
MLflow's deprecated stages read from Shipyard's lifecycle; only ``Archived`` can be set.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, Query, Request
from pydantic import Field

from shipyard.core import filters
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.registry.models import ModelVersion, VersionState
from shipyard.registry.ports import ModelRegistry
from shipyard.server.auth import current_actor
from shipyard.server.jsonbody import JsonRoute
from shipyard.server.mlflow_api import wire
from shipyard.server.mlflow_api.tracking import Body, KeyValue, _offset, _pairs, read_model
from shipyard.server.tracking import _svc as tracking_of

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"], route_class=JsonRoute)
Name = Annotated[str, Query(max_length=256)]


def _svc(request: Request) -> ModelRegistry:
    return request.app.state.backend.registry  # type: ignore[no-any-return]


def _version_wire(svc: ModelRegistry, mv: ModelVersion) -> dict[str, Any]:
    return wire.model_version(mv, svc.tracking.get_run(mv.run_id).experiment_id)


def _model(svc: ModelRegistry, name: str) -> dict[str, Any]:
    model = svc.get_model(name)
    latest = wire.latest_per_stage(svc.list_versions(name))
    return wire.registered_model(
        model, [(v, svc.tracking.get_run(v.run_id).experiment_id) for v in latest]
    )


class CreateModel(Body):
    name: str
    tags: list[KeyValue] = Field(default_factory=list)
    description: str | None = None


@router.post("/registered-models/create")
def create_registered_model(body: CreateModel, request: Request) -> dict[str, Any]:
    """Create an empty registered model."""
    svc = _svc(request)
    svc.create_model(body.name, description=body.description, tags=_pairs(body.tags))
    return {"registered_model": _model(svc, body.name)}


@router.get("/registered-models/get")
def get_registered_model(request: Request, name: Name) -> dict[str, Any]:
    """A registered model with its latest version per stage and its aliases."""
    return {"registered_model": _model(_svc(request), name)}


def _page(items: list[Any], token: str | None, limit: int, key: str) -> dict[str, Any]:
    start = _offset(token)
    out: dict[str, Any] = {key: items[start : start + limit]}
    if start + limit < len(items):
        out["next_page_token"] = str(start + limit)
    return out


@router.get("/registered-models/search")
def search_registered_models(
    request: Request,
    filter: Annotated[str | None, Query(max_length=4096)] = None,
    max_results: Annotated[int, Query(ge=1, le=10_000)] = 100,
    page_token: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Registered models by name (``name LIKE 'fraud%'``), by name."""
    clauses = filters.parse(filter, {"name"})
    svc = _svc(request)
    names = sorted(m.name for m in svc.list_models() if filters.matches({"name": m.name}, clauses))
    page = _page(names, page_token, max_results, "registered_models")
    page["registered_models"] = [_model(svc, n) for n in page["registered_models"]]
    return page


class UpdateModel(Body):
    name: str
    description: str | None = None


@router.patch("/registered-models/update")
def update_registered_model(body: UpdateModel, request: Request) -> dict[str, Any]:
    """Change a model's description."""
    svc = _svc(request)
    svc.update_model(body.name, body.description or "")
    return {"registered_model": _model(svc, body.name)}


@router.post("/registered-models/rename")
@router.delete("/registered-models/delete")
def rename_or_delete_model() -> dict[str, Any]:
    """A registered model's name is what deployments, gates and the audit refer to."""
    raise InvalidInputError(
        "Shipyard does not rename or delete registered models: deployments, approvals and "
        "the audit log refer to them by name; retire their versions instead"
    )


class LatestVersions(Body):
    name: str
    stages: list[str] = Field(default_factory=list)


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, request: Request) -> dict[str, Any]:
    """The newest version in each stage (or in the stages asked for)."""
    svc = _svc(request)
    svc.get_model(body.name)
    latest = wire.latest_per_stage(svc.list_versions(body.name))
    wanted = {s.lower() for s in body.stages}
    chosen = [v for v in latest if not wanted or wire.STAGE_OF[v.state].lower() in wanted]
    return {"model_versions": [_version_wire(svc, v) for v in chosen]}


class ModelTag(Body):
    name: str
    key: str
    value: str | None = None


@router.post("/registered-models/set-tag")
def set_model_tag(body: ModelTag, request: Request) -> dict[str, Any]:
    """Set a registered model's tag."""
    _svc(request).set_tag(body.name, None, body.key, body.value or "")
    return {}


@router.delete("/registered-models/delete-tag")
def delete_model_tag(body: ModelTag, request: Request) -> dict[str, Any]:
    """Remove a registered model's tag."""
    _svc(request).set_tag(body.name, None, body.key, None)
    return {}


class Alias(Body):
    name: str
    alias: str
    version: str | None = None


@router.post("/registered-models/alias")
def set_alias(body: Alias, request: Request) -> dict[str, Any]:
    """Point an alias at a version (an approver's act; ``champion`` moves by approval)."""
    if not body.version:
        raise InvalidInputError("Missing value for required parameter 'version'")
    _svc(request).set_alias(body.name, body.alias, body.version)
    return {}


@router.delete("/registered-models/alias")
def delete_alias(body: Alias, request: Request) -> dict[str, Any]:
    """Remove an alias."""
    _svc(request).delete_alias(body.name, body.alias)
    return {}


@router.get("/registered-models/alias")
def get_version_by_alias(
    request: Request, name: Name, alias: Annotated[str, Query(max_length=256)]
) -> dict[str, Any]:
    """The version an alias points at."""
    return {
        "model_version": _version_wire(
            _svc(request), _svc(request).resolve(f"models:/{name}@{alias}")
        )
    }


# versions ---------------------------------------------------------------------------------


class CreateVersion(Body):
    name: str
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


def package_location(request: Request, source: str, model_id: str | None) -> tuple[str, str]:
    """The run and artifact folder of a model package an MLflow ``source`` names.

    Raises:
        InvalidInputError: the source is not a package held by this server.
    """
    text = source.strip()
    if text.startswith("models:/"):
        doc = read_model(tracking_of(request), text.removeprefix("models:/").strip("/"))
        return str(doc["source_run_id"]), str(doc["artifact_path"])
    if text.startswith("runs:/"):
        run_id, _, path = text.removeprefix("runs:/").partition("/")
        if run_id and path:
            return run_id, path.strip("/")
    path = text
    if text.startswith(("http://", "https://")):
        path = urlparse(text).path.partition("/mlflow-artifacts/artifacts")[2]
    elif text.startswith(wire.ARTIFACTS_SCHEME):
        path = text.removeprefix(wire.ARTIFACTS_SCHEME)
    parts = path.strip("/").split("/", 3)
    if len(parts) == 4 and parts[2] == "artifacts" and parts[1].startswith("run_"):
        return parts[1], parts[3].strip("/")
    if model_id:
        doc = read_model(tracking_of(request), model_id)
        return str(doc["source_run_id"]), str(doc["artifact_path"])
    raise InvalidInputError(
        f"model source {source[:200]!r} is not a package stored on this server: log the model "
        "to a run here (runs:/<run>/<path>, models:/<model id> or the run's artifact URI)"
    )


@router.post("/model-versions/create")
def create_model_version(body: CreateVersion, request: Request) -> dict[str, Any]:
    """Register a package logged to a run of this server as the next version."""
    run_id, path = package_location(request, body.source, body.model_id)
    if body.run_id and body.run_id != run_id:
        raise InvalidInputError(
            f"source {body.source[:120]!r} belongs to run {run_id}, not {body.run_id}"
        )
    tags = _pairs(body.tags)
    if body.model_id:
        tags["mlflow.model_id"] = body.model_id
    actor = current_actor(request)
    mv = _svc(request).register(
        body.name,
        run_id=run_id,
        artifact_path=path,
        description=body.description,
        tags=tags,
        created_by=actor.name,
    )
    return {"model_version": _version_wire(_svc(request), mv)}


def _version(svc: ModelRegistry, name: str, version: str) -> ModelVersion:
    return svc.get_version(name, version)


@router.get("/model-versions/get")
def get_model_version(
    request: Request, name: Name, version: Annotated[str, Query(max_length=20)]
) -> dict[str, Any]:
    """One version."""
    svc = _svc(request)
    return {"model_version": _version_wire(svc, _version(svc, name, version))}


@router.get("/model-versions/get-download-uri")
def get_download_uri(
    request: Request, name: Name, version: Annotated[str, Query(max_length=20)]
) -> dict[str, Any]:
    """Where the version's files are (the run's artifacts, read through this server)."""
    svc = _svc(request)
    return {"artifact_uri": _version_wire(svc, _version(svc, name, version))["source"]}


class UpdateVersion(Body):
    name: str
    version: str
    description: str | None = None


@router.patch("/model-versions/update")
def update_model_version(body: UpdateVersion, request: Request) -> dict[str, Any]:
    """Change a version's description."""
    svc = _svc(request)
    mv = svc.update(body.name, body.version, description=body.description)
    return {"model_version": _version_wire(svc, mv)}


class Transition(Body):
    name: str
    version: str
    stage: str
    archive_existing_versions: bool | str = False


@router.post("/model-versions/transition-stage")
def transition_stage(body: Transition, request: Request) -> dict[str, Any]:
    """MLflow's deprecated stages: ``Archived`` retires a version; promotion is governed."""
    if body.stage.lower() != "archived":
        raise InvalidInputError(
            f"Shipyard does not move versions to stage {body.stage!r} by hand: a version "
            "becomes approved and production through its gate report and approvals "
            "(shipyard models request-promotion); aliases decide what is served"
        )
    svc = _svc(request)
    mv = svc.transition(body.name, body.version, VersionState.RETIRED)
    return {"model_version": _version_wire(svc, mv)}


class VersionRef(Body):
    name: str
    version: str


@router.delete("/model-versions/delete")
def delete_model_version(body: VersionRef, request: Request) -> dict[str, Any]:
    """Delete a version (refused while it is in production or holds an alias)."""
    _svc(request).delete_version(body.name, body.version)
    return {}


class VersionTag(Body):
    name: str
    version: str
    key: str
    value: str | None = None


@router.post("/model-versions/set-tag")
def set_version_tag(body: VersionTag, request: Request) -> dict[str, Any]:
    """Set a version's tag."""
    _svc(request).set_tag(body.name, body.version, body.key, body.value or "")
    return {}


@router.delete("/model-versions/delete-tag")
def delete_version_tag(body: VersionTag, request: Request) -> dict[str, Any]:
    """Remove a version's tag."""
    _svc(request).set_tag(body.name, body.version, body.key, None)
    return {}


@router.get("/model-versions/search")
def search_model_versions(
    request: Request,
    filter: Annotated[str | None, Query(max_length=4096)] = None,
    max_results: Annotated[int, Query(ge=1, le=200_000)] = 10_000,
    page_token: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Versions by model name or run id (``name = 'fraud'``), newest first."""
    clauses = filters.parse(filter, {"name", "run_id"})
    svc = _svc(request)
    names = [c[2] for c in clauses if c[0] == "name" and c[1] == "="]
    models = names or [m.name for m in svc.list_models()]
    found: list[ModelVersion] = []
    for name in models:
        try:
            versions = svc.list_versions(name)
        except NotFoundError:
            continue
        found.extend(
            v for v in versions if filters.matches({"name": v.name, "run_id": v.run_id}, clauses)
        )
    found.sort(key=lambda v: (v.created_at, v.version), reverse=True)
    page = _page(found, page_token, max_results, "model_versions")
    page["model_versions"] = [_version_wire(svc, v) for v in page["model_versions"]]
    return page
