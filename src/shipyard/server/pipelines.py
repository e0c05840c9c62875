"""Pipelines, schedules and blobs through the server (team mode).

Pipelines run where their client is; the server keeps what they record: pipeline and step
runs, the step cache, lineage edges, schedules and their ticks, and the step outputs'
blobs. The rules the database cannot know are kept here:

- a pipeline run is changed only by whoever started its tracked run, or an admin; a step
  may end only a tracked run of that same person;
- edges a client sends must hang off its own pipeline or step run;
- the step cache answers a caller only with outputs of their own step runs, so nobody can
  plant outputs (a pickle, say) that another user's pipeline would load as a cache hit;
- a tick is claimed by one scheduler only (the claim is one transaction in the database).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from shipyard.bootstrap import PipelineParts
from shipyard.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from shipyard.core.hashing import check_digest
from shipyard.governance.models import Role
from shipyard.pipelines.models import OutputRecord
from shipyard.pipelines.schedules import check_cron
from shipyard.server.auth import current_actor
from shipyard.server.jsonbody import JsonRoute, request_chunks
from shipyard.tracking.service import USER_TAG
from shipyard.wire.schemas import (
    BlobRead,
    CacheEntry,
    EdgeList,
    NodeList,
    OutputWire,
    PipelineFinish,
    PipelineList,
    PipelineRunList,
    PipelineRunWire,
    PipelineSummary,
    RunIdList,
    ScheduleList,
    ScheduleWire,
    StepCounts,
    StepSave,
    TickClaim,
    TickClaimed,
    TickFinish,
    TickList,
    TickWire,
)

router = APIRouter(prefix="/api/v1", route_class=JsonRoute)


def _parts(request: Request) -> PipelineParts:
    parts: PipelineParts | None = request.app.state.backend.pipelines
    if parts is None:
        raise StoreError("this server keeps no pipeline records")
    return parts


def _owner(request: Request, tracked_run_id: str | None) -> str | None:
    if tracked_run_id is None:
        return None
    owner: str | None = request.app.state.backend.tracking.get_run(tracked_run_id).tags.get(
        USER_TAG
    )
    return owner


def _may_change(request: Request, tracked_run_id: str | None, what: str) -> None:
    """Refuse unless the caller started ``tracked_run_id`` (or is an admin); a tracked run
    that does not exist is a 404 whoever asks."""
    owner = _owner(request, tracked_run_id)
    actor = current_actor(request)
    if not actor.authenticated or actor.role.allows(Role.ADMIN):
        return
    if owner != actor.name:
        raise PermissionDeniedError(
            f"{what} belongs to {owner or 'nobody'}; only they or an admin may change it",
            actor=actor.name,
        )


def pipeline_run_owned(request: Request, run_id: str) -> None:
    record = _parts(request).store.get_pipeline_run(run_id)
    _may_change(request, record.run_id, f"pipeline run {run_id}")


def _check_edges(edges: list[tuple[str, str, str]], own: set[str]) -> None:
    for source, target, _ in edges:
        if source not in own and target not in own:
            raise PermissionDeniedError(
                f"lineage edge {source} -> {target} touches none of this run's nodes"
            )


# pipeline runs ---------------------------------------------------------------------------


@router.post("/pipeline-runs", status_code=201, tags=["pipelines"])
def create_pipeline_run(body: PipelineRunWire, request: Request) -> PipelineRunWire:
    """Record a new pipeline run (its tracked run must be the caller's)."""
    _may_change(request, body.run_id, f"run {body.run_id}")
    store = _parts(request).store
    try:
        store.get_pipeline_run(body.id)
    except NotFoundError:
        store.create_pipeline_run(body.domain())
        return body
    raise ConflictError(f"pipeline run {body.id} exists already", pipeline_run=body.id)


@router.post("/pipeline-runs/{run_id}/finish", status_code=204, tags=["pipelines"])
def finish_pipeline_run(run_id: str, body: PipelineFinish, request: Request) -> Response:
    """Set a pipeline run's final status."""
    pipeline_run_owned(request, run_id)
    _parts(request).store.finish_pipeline_run(run_id, body.status, body.ended_at)
    return Response(status_code=204)


@router.put("/pipeline-runs/{run_id}/steps/{step_run_id}", status_code=204, tags=["pipelines"])
def save_step_run(run_id: str, step_run_id: str, body: StepSave, request: Request) -> Response:
    """Insert or replace a step run, with its edges, cache entry and the end of its run."""
    record = body.record.domain()
    if record.pipeline_run_id != run_id or record.id != step_run_id:
        raise PermissionDeniedError("the step run belongs to another pipeline run or id")
    pipeline_run_owned(request, run_id)
    if record.run_id is not None:
        _may_change(request, record.run_id, f"run {record.run_id}")
    edges = [(a, b, c) for a, b, c in body.edges] if body.edges is not None else None
    _check_edges(edges or [], {f"pipeline_run:{run_id}", f"step_run:{record.id}"})
    _parts(request).store.save_step_run(
        record,
        body.position,
        edges=edges,
        cache=body.cache,
        end_tracked_run=body.end_tracked_run,
    )
    return Response(status_code=204)


@router.get("/pipeline-runs/{run_id}", tags=["pipelines"])
def get_pipeline_run(run_id: str, request: Request) -> PipelineRunWire:
    """A pipeline run with its step runs in order."""
    return PipelineRunWire.of(_parts(request).store.get_pipeline_run(run_id))


@router.get("/pipeline-runs", tags=["pipelines"])
def list_pipeline_runs(
    request: Request,
    pipeline: Annotated[str | None, Query(max_length=250)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> PipelineRunList:
    """Pipeline runs, newest first, without step details."""
    found = _parts(request).store.list_pipeline_runs(pipeline, limit)
    return PipelineRunList(runs=[PipelineRunWire.of(r) for r in found])


@router.post("/pipeline-runs/step-counts", tags=["pipelines"])
def step_counts(body: RunIdList, request: Request) -> StepCounts:
    """Steps per status of each pipeline run."""
    return StepCounts(counts=_parts(request).store.step_counts(body.run_ids))


@router.get("/pipelines", tags=["pipelines"])
def list_pipelines(request: Request) -> PipelineList:
    """Every pipeline with its number of runs and when the last one started."""
    found = _parts(request).store.list_pipelines()
    return PipelineList(
        pipelines=[PipelineSummary(name=n, runs=r, last_started=s) for n, r, s in found]
    )


# the step cache --------------------------------------------------------------------------


def _own_cache_entry(request: Request, key: str) -> CacheEntry | None:
    """The caller's own entry for ``key``, or None (someone else's is a miss)."""
    store = _parts(request).store
    entry = store.cache_entry(key)
    if entry is None:
        return None
    step, step_run_id, outputs = entry
    actor = current_actor(request)
    if actor.authenticated:
        pipeline_run = store.get_pipeline_run(store.step_run_pipeline(step_run_id))
        if _owner(request, pipeline_run.run_id) != actor.name:
            return None
    wires = [OutputWire.model_validate(dataclasses.asdict(o)) for o in outputs]
    return CacheEntry(step=step, step_run_id=step_run_id, outputs=wires)


@router.get("/step-cache/{key}", tags=["pipelines"])
def get_cache(key: str, request: Request) -> CacheEntry:
    """The outputs a cache key holds, if they came from the caller's own step runs."""
    check_digest(key)
    entry = _own_cache_entry(request, key)
    if entry is None:
        raise NotFoundError(f"no cache entry {key[:12]}... of yours", key=key)
    return entry


@router.put("/step-cache/{key}", status_code=204, tags=["pipelines"])
def put_cache(key: str, body: CacheEntry, request: Request) -> Response:
    """Remember outputs under a key; the step run they came from must be the caller's."""
    check_digest(key)
    store = _parts(request).store
    pipeline_run_owned(request, store.step_run_pipeline(body.step_run_id))
    outputs = tuple(OutputRecord(**o.model_dump()) for o in body.outputs)
    store.put_cache(key, body.step, body.step_run_id, outputs)
    return Response(status_code=204)


@router.delete("/step-cache/{key}", status_code=204, tags=["pipelines"])
def drop_cache(key: str, request: Request) -> Response:
    """Forget a cache entry of the caller's (its blobs went missing)."""
    check_digest(key)
    if _own_cache_entry(request, key) is not None:
        _parts(request).store.drop_cache(key)
    return Response(status_code=204)


# lineage edges ---------------------------------------------------------------------------


@router.post("/pipeline-runs/{run_id}/edges", status_code=204, tags=["pipelines"])
def add_edges(run_id: str, body: EdgeList, request: Request) -> Response:
    """Append lineage edges that start at this (the caller's) pipeline run."""
    pipeline_run_owned(request, run_id)
    edges = [(a, b, c) for a, b, c in body.edges]
    _check_edges(edges, {f"pipeline_run:{run_id}"})
    _parts(request).store.add_edges(edges)
    return Response(status_code=204)


@router.post("/runs/{run_id}/edges", status_code=204, tags=["pipelines"])
def add_run_edges(run_id: str, body: EdgeList, request: Request) -> Response:
    """Append lineage edges that touch this (the caller's) tracking run: the data a run
    trained on when no pipeline ran it (a federated job's silo fingerprints)."""
    _may_change(request, run_id, f"run {run_id}")
    edges = [(a, b, c) for a, b, c in body.edges]
    _check_edges(edges, {f"run:{run_id}"})
    _parts(request).store.add_edges(edges)
    return Response(status_code=204)


@router.post("/lineage/edges/touching", tags=["pipelines"])
def edges_touching(body: NodeList, request: Request) -> EdgeList:
    """Edges whose source or target is one of the nodes."""
    return EdgeList(edges=_parts(request).store.edges_touching(body.nodes))


# schedules -------------------------------------------------------------------------------


@router.put("/schedules/{name}", tags=["schedules"])
def save_schedule(name: str, body: ScheduleWire, request: Request) -> ScheduleWire:
    """Insert or replace a schedule (its tick history stays)."""
    if body.name != name:
        raise PermissionDeniedError("the schedule in the body has another name")
    check_cron(body.cron, body.timezone)
    _parts(request).schedules.save_schedule(body.domain())
    return body


@router.get("/schedules", tags=["schedules"])
def list_schedules(request: Request) -> ScheduleList:
    """Every schedule by name."""
    found = _parts(request).schedules.list_schedules()
    return ScheduleList(schedules=[ScheduleWire.of(s) for s in found])


@router.get("/schedules/{name}", tags=["schedules"])
def get_schedule(name: str, request: Request) -> ScheduleWire:
    """One schedule."""
    return ScheduleWire.of(_parts(request).schedules.get_schedule(name))


@router.delete("/schedules/{name}", status_code=204, tags=["schedules"])
def delete_schedule(name: str, request: Request) -> Response:
    """Remove a schedule (its ticks stay, for the record)."""
    _parts(request).schedules.delete_schedule(name)
    return Response(status_code=204)


@router.post("/schedules/{name}/ticks/claim", tags=["schedules"])
def claim_tick(name: str, body: TickClaim, request: Request) -> TickClaimed:
    """Claim a due tick: STARTED, SKIPPED (a run is going), or null (claimed already)."""
    schedules = _parts(request).schedules
    schedules.get_schedule(name)
    return TickClaimed(status=schedules.claim_tick(name, body.nominal_time, body.stale_before))


@router.post("/schedules/{name}/ticks", status_code=204, tags=["schedules"])
def record_tick(name: str, body: TickWire, request: Request) -> Response:
    """Record a tick that will not run (MISSED)."""
    if body.schedule != name:
        raise PermissionDeniedError("the tick in the body belongs to another schedule")
    _parts(request).schedules.record_tick(body.domain())
    return Response(status_code=204)


@router.post("/schedules/{name}/ticks/{nominal_time}/finish", status_code=204, tags=["schedules"])
def finish_tick(name: str, nominal_time: int, body: TickFinish, request: Request) -> Response:
    """Close a STARTED tick with its outcome."""
    _parts(request).schedules.finish_tick(
        name, nominal_time, body.status, body.pipeline_run_id, body.note
    )
    return Response(status_code=204)


@router.get("/schedules/{name}/ticks", tags=["schedules"])
def list_ticks(
    name: str, request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 20
) -> TickList:
    """A schedule's ticks, newest first."""
    found = _parts(request).schedules.list_ticks(name, limit)
    return TickList(ticks=[TickWire.of(t) for t in found])


# blobs -----------------------------------------------------------------------------------


@router.put("/blobs", status_code=201, tags=["blobs"])
async def put_blob(request: Request) -> BlobRead:
    """Stream bytes into the blob store; the server computes their digest."""
    parts = _parts(request)
    limit = request.app.state.settings.max_artifact_bytes
    ref = await run_in_threadpool(parts.blobs.put_chunks, request_chunks(request), limit)
    return BlobRead(digest=ref.digest, size=ref.size)


@router.get("/blobs/{digest}", tags=["blobs"], response_model=None)
def get_blob(digest: str, request: Request) -> StreamingResponse:
    """A blob's bytes, streamed (a download, never rendered)."""
    check_digest(digest)
    parts = _parts(request)
    if not parts.blobs.exists(digest):
        raise NotFoundError(f"blob {digest[:12]}... is not stored here", digest=digest)
    return StreamingResponse(
        parts.blobs.read_chunks(digest),
        media_type="application/octet-stream",
        headers={
            "X-Shipyard-Digest": f"sha256:{digest}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@router.head("/blobs/{digest}", tags=["blobs"], response_model=None)
def has_blob(digest: str, request: Request) -> Response:
    """200 when the blob is stored, 404 when not."""
    check_digest(digest)
    return Response(status_code=200 if _parts(request).blobs.exists(digest) else 404)
