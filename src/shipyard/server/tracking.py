"""Routes of the tracking API under /api/v1: thin translations to TrackingService."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from shipyard.core.clock import now_ms
from shipyard.core.errors import PermissionDeniedError
from shipyard.governance.models import Role
from shipyard.server.auth import current_actor
from shipyard.server.jsonbody import JsonRoute, request_chunks
from shipyard.tracking.models import ArtifactRecord, RunSource
from shipyard.tracking.service import USER_TAG, TrackingService
from shipyard.wire.schemas import (
    ArtifactList,
    ArtifactRead,
    BatchCreate,
    ExperimentCreate,
    ExperimentList,
    ExperimentRead,
    MetricHistory,
    MetricWire,
    RunCreate,
    RunExpiry,
    RunPageRead,
    RunRead,
    RunSearch,
    RunUpdate,
    Wire,
)

router = APIRouter(prefix="/api/v1", route_class=JsonRoute)


def _json(model: Wire, status_code: int = 200) -> Response:
    """Serialise once with pydantic-core, skipping FastAPI's second validation pass of the
    response model (a third of the time of a 100-run search page)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def _svc(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.backend.tracking
    return service


def _owned(request: Request, run_id: str, artifact: str | None = None) -> TrackingService:
    """The service, once the caller may change this run: who started it, or an admin.

    Reviewers (approvers) may also archive dossiers into a version's run.
    """
    svc = _svc(request)
    actor = current_actor(request)
    reviewing = artifact is not None and artifact.startswith("dossiers/")
    if reviewing and actor.role.allows(Role.APPROVER):
        return svc
    if actor.authenticated and not actor.role.allows(Role.ADMIN):
        owner = svc.get_run(run_id).tags.get(USER_TAG)
        if owner != actor.name:
            raise PermissionDeniedError(
                f"run {run_id} was started by {owner}; only they or an admin may change it",
                run_id=run_id,
                actor=actor.name,
            )
    return svc


@router.post("/experiments", status_code=201, tags=["experiments"])
def create_experiment(body: ExperimentCreate, request: Request) -> ExperimentRead:
    """Create an experiment."""
    return ExperimentRead.of(_svc(request).create_experiment(body.name, body.tags))


@router.get("/experiments", tags=["experiments"])
def list_experiments(
    request: Request, name: Annotated[str | None, Query(max_length=256)] = None
) -> ExperimentList:
    """List experiments, or find one by exact name."""
    svc = _svc(request)
    if name is not None:
        found = svc.find_experiment(name)
        return ExperimentList(experiments=[ExperimentRead.of(found)] if found else [])
    return ExperimentList(experiments=[ExperimentRead.of(e) for e in svc.list_experiments()])


@router.get("/experiments/{experiment_id}", tags=["experiments"])
def get_experiment(experiment_id: str, request: Request) -> ExperimentRead:
    """Get an experiment by id."""
    return ExperimentRead.of(_svc(request).get_experiment(experiment_id))


@router.post("/runs", status_code=201, tags=["runs"])
def create_run(body: RunCreate, request: Request) -> RunRead:
    """Start a run."""
    tags = dict(body.tags)
    actor = current_actor(request)
    if actor.authenticated:
        tags[USER_TAG] = actor.name  # who trained it is who the token says, not the body
    run = _svc(request).create_run(
        body.experiment_id,
        name=body.name,
        parent_id=body.parent_id,
        tags=tags,
        source=RunSource(body.source.git_commit, body.source.entry_point),
    )
    return RunRead.of(run)


@router.post("/runs/search", tags=["runs"], response_model=RunPageRead)
def search_runs(body: RunSearch, request: Request) -> Response:
    """Search runs with MLflow's filter and order syntax."""
    page = _svc(request).search_runs(
        body.experiment_ids, body.filter, body.order_by, body.max_results, body.page_token
    )
    return _json(RunPageRead.of(page))


@router.get("/runs/{run_id}", tags=["runs"], response_model=RunRead)
def get_run(run_id: str, request: Request) -> Response:
    """Get a run with its params, latest metrics and tags."""
    return _json(RunRead.of(_svc(request).get_run(run_id)))


@router.patch("/runs/{run_id}", tags=["runs"])
def update_run(run_id: str, body: RunUpdate, request: Request) -> RunRead:
    """Set a run's status (the server stamps the end time)."""
    return RunRead.of(_owned(request, run_id).end_run(run_id, body.status))


@router.post("/runs/{run_id}/heartbeat", status_code=204, tags=["runs"])
def heartbeat(run_id: str, request: Request) -> Response:
    """The run's client is alive: keeps the run from being expired."""
    _owned(request, run_id).heartbeat(run_id)
    return Response(status_code=204)


@router.post("/runs/expire", tags=["runs"])
def expire_runs(body: RunExpiry, request: Request) -> dict[str, list[str]]:
    """End as KILLED the RUNNING runs silent since ``silent_since`` (admin)."""
    silent_for = max(0.001, (now_ms() - body.silent_since) / 1000)
    return {"expired": _svc(request).expire_stale_runs(silent_for)}


@router.delete("/runs/{run_id}", status_code=204, tags=["runs"])
def delete_run(run_id: str, request: Request) -> Response:
    """Delete a run."""
    _owned(request, run_id).delete_run(run_id)
    return Response(status_code=204)


@router.post("/runs/{run_id}/batch", status_code=204, tags=["runs"])
def log_batch(run_id: str, body: BatchCreate, request: Request) -> Response:
    """Append metrics and set params and tags in one transaction (idempotent per batch_id)."""
    _owned(request, run_id).log_batch(
        run_id, [m.domain() for m in body.metrics], body.params, body.tags, body.batch_id
    )
    return Response(status_code=204)


@router.get("/runs/{run_id}/metrics/history", tags=["runs"], response_model=MetricHistory)
def metric_history(
    run_id: str, request: Request, key: Annotated[str, Query(max_length=1000)]
) -> Response:
    """Every point of one metric."""
    points = _svc(request).get_metric_history(run_id, key)
    return _json(
        MetricHistory(
            metrics=[
                MetricWire(key=m.key, value=m.value, step=m.step, timestamp=m.timestamp)
                for m in points
            ]
        )
    )


@router.get("/runs/{run_id}/artifacts", tags=["artifacts"])
def list_artifacts(run_id: str, request: Request) -> ArtifactList:
    """List a run's artifacts."""
    return ArtifactList(
        artifacts=[ArtifactRead.of(a) for a in _svc(request).list_artifacts(run_id)]
    )


@router.put("/runs/{run_id}/artifacts/{name:path}", status_code=201, tags=["artifacts"])
async def upload_artifact(run_id: str, name: str, request: Request) -> ArtifactRead:
    """Store the request body as an artifact, streamed to the blob store chunk by chunk."""
    return ArtifactRead.of(await store_upload(request, run_id, name))


async def store_upload(request: Request, run_id: str, name: str) -> ArtifactRecord:
    """Stream a request body into an artifact of a run the caller may change."""
    svc = await run_in_threadpool(_owned, request, run_id, name)
    media_type = request.headers.get("content-type") or None
    record: ArtifactRecord = await run_in_threadpool(
        svc.log_chunks,
        run_id,
        name,
        request_chunks(request),
        media_type,
        request.app.state.settings.max_artifact_bytes,
    )
    return record


@router.get("/runs/{run_id}/artifacts/{name:path}", tags=["artifacts"], response_model=None)
def download_artifact(
    run_id: str, name: str, request: Request, meta: bool = False
) -> ArtifactRead | StreamingResponse:
    """Stream an artifact's bytes (``?meta=true``: its record instead)."""
    svc = _svc(request)
    record = svc.artifacts.get_artifact(run_id, name)
    if meta:
        return ArtifactRead.of(record)
    return artifact_response(svc, record)


def artifact_response(svc: TrackingService, record: ArtifactRecord) -> StreamingResponse:
    """An artifact's bytes, streamed as a download no browser renders on our origin."""
    body = svc.artifacts.read_artifact(record.run_id, record.name)
    # The uploader chose the media type: serve only inert types as themselves, everything
    # else as bytes to download, never rendered or sniffed by a browser on our origin.
    media = (
        record.media_type if record.media_type in INERT_MEDIA_TYPES else "application/octet-stream"
    )
    filename = quote(record.name.rsplit("/", 1)[-1])
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Length": str(record.size),
            "X-Shipyard-Digest": f"sha256:{record.digest}",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


#: Media types served as recorded: data formats no browser executes.
INERT_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "text/plain",
        "text/csv",
        "application/x-parquet",
        "application/vnd.apache.parquet",
        "application/octet-stream",
        "image/png",
        "image/jpeg",
        "application/zip",
        "application/x-yaml",
    }
)
