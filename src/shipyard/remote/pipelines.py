"""Pipelines, schedules and blobs over HTTP: the stores a pipeline run needs, on a server.

Each class implements its port (PipelineStore, ScheduleStore, BlobStore) by composition
over a RestClient, so a pipeline, a resume or a scheduler runs unchanged against
``SHIPYARD_URI=http://...``. What only the store's own machine can do (listing or
deleting blobs for the orphan sweep) is refused with a message saying where to run it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.core.blobs import BlobRef, StoredBlob
from shipyard.core.errors import NotFoundError, StoreError
from shipyard.core.hashing import check_digest, file_chunks
from shipyard.pipelines.models import (
    OutputRecord,
    PipelineRunRecord,
    PipelineStatus,
    StepRunRecord,
)
from shipyard.pipelines.schedules import Schedule, Tick, TickStatus
from shipyard.remote.client import RestClient, json_body
from shipyard.tracking.models import RunStatus
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
    RunIdList,
    ScheduleList,
    ScheduleWire,
    StepCounts,
    StepRunWire,
    StepSave,
    TickClaim,
    TickClaimed,
    TickFinish,
    TickList,
    TickWire,
)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _outputs(entry: CacheEntry) -> tuple[OutputRecord, ...]:
    return tuple(OutputRecord(**o.model_dump()) for o in entry.outputs)


class RestPipelineStore:
    """PipelineStore over ``/api/v1/pipeline-runs``, the step cache and lineage routes."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def create_pipeline_run(self, record: PipelineRunRecord) -> None:
        """POST /api/v1/pipeline-runs."""
        body = PipelineRunWire.of(record)
        self.client.json("POST", "/api/v1/pipeline-runs", idempotent=False, **json_body(body))

    def finish_pipeline_run(self, run_id: str, status: PipelineStatus, ended_at: int) -> None:
        """POST /api/v1/pipeline-runs/{id}/finish."""
        body = PipelineFinish(status=status, ended_at=ended_at)
        self.client.json("POST", f"/api/v1/pipeline-runs/{_seg(run_id)}/finish", **json_body(body))

    def save_step_run(
        self,
        record: StepRunRecord,
        position: int,
        *,
        edges: list[tuple[str, str, str]] | None = None,
        cache: bool = False,
        end_tracked_run: RunStatus | None = None,
    ) -> None:
        """PUT /api/v1/pipeline-runs/{id}/steps/{step}: one transaction on the server."""
        body = StepSave(
            record=StepRunWire.of(record),
            position=position,
            edges=edges,
            cache=cache,
            end_tracked_run=end_tracked_run,
        )
        path = f"/api/v1/pipeline-runs/{_seg(record.pipeline_run_id)}/steps/{_seg(record.id)}"
        self.client.json("PUT", path, **json_body(body))

    def get_pipeline_run(self, run_id: str) -> PipelineRunRecord:
        """GET /api/v1/pipeline-runs/{id}."""
        data = self.client.content("GET", f"/api/v1/pipeline-runs/{_seg(run_id)}")
        return PipelineRunWire.model_validate_json(data).domain()

    def list_pipeline_runs(self, pipeline: str | None, limit: int) -> list[PipelineRunRecord]:
        """GET /api/v1/pipeline-runs."""
        params: dict[str, Any] = {"limit": limit}
        if pipeline is not None:
            params["pipeline"] = pipeline
        data = self.client.content("GET", "/api/v1/pipeline-runs", params=params)
        return [r.domain() for r in PipelineRunList.model_validate_json(data).runs]

    def step_counts(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """POST /api/v1/pipeline-runs/step-counts."""
        body = RunIdList(run_ids=run_ids)
        data = self.client.json("POST", "/api/v1/pipeline-runs/step-counts", **json_body(body))
        return StepCounts.model_validate(data).counts

    def list_pipelines(self) -> list[tuple[str, int, int]]:
        """GET /api/v1/pipelines."""
        data = PipelineList.model_validate(self.client.json("GET", "/api/v1/pipelines"))
        return [(p.name, p.runs, p.last_started) for p in data.pipelines]

    def cache_entry(self, key: str) -> tuple[str, str, tuple[OutputRecord, ...]] | None:
        """GET /api/v1/step-cache/{key}: only the caller's own entries are hits."""
        try:
            data = self.client.json("GET", f"/api/v1/step-cache/{check_digest(key)}")
        except NotFoundError:
            return None
        entry = CacheEntry.model_validate(data)
        return entry.step, entry.step_run_id, _outputs(entry)

    def get_cache(self, key: str) -> tuple[OutputRecord, ...] | None:
        """The outputs of the caller's own cache entry for ``key``."""
        found = self.cache_entry(key)
        return found[2] if found is not None else None

    def step_run_pipeline(self, step_run_id: str) -> str:
        """Not needed by clients: the server answers cache ownership itself."""
        raise StoreError("step_run_pipeline runs on the server")

    def put_cache(
        self, key: str, step: str, step_run_id: str, outputs: tuple[OutputRecord, ...]
    ) -> None:
        """PUT /api/v1/step-cache/{key}."""
        body = CacheEntry(
            step=step,
            step_run_id=step_run_id,
            outputs=[OutputWire.model_validate(_plain(o)) for o in outputs],
        )
        self.client.json("PUT", f"/api/v1/step-cache/{check_digest(key)}", **json_body(body))

    def drop_cache(self, key: str) -> None:
        """DELETE /api/v1/step-cache/{key}."""
        self.client.json("DELETE", f"/api/v1/step-cache/{check_digest(key)}")

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Edges go to the run they hang off: ``POST /api/v1/pipeline-runs/{id}/edges`` for
        a client's pipeline run, ``POST /api/v1/runs/{id}/edges`` for its tracking run."""
        by_route: dict[str, list[tuple[str, str, str]]] = {}
        for edge in edges:
            route = _edge_route(edge)
            if route is None:
                raise StoreError(f"a client adds only edges from its own runs: {edge}")
            by_route.setdefault(route, []).append(edge)
        for route, some in by_route.items():
            self.client.json("POST", route, idempotent=False, **json_body(EdgeList(edges=some)))

    def record_lineage_event(
        self, event: dict[str, Any], edges: list[tuple[str, str, str]]
    ) -> None:
        """OpenLineage events go to ``POST /api/v1/lineage`` (the server derives the edges)."""
        self.client.json("POST", "/api/v1/lineage", idempotent=False, json=event)

    def edges_touching(self, nodes: list[str]) -> list[tuple[str, str, str]]:
        """POST /api/v1/lineage/edges/touching."""
        body = NodeList(nodes=nodes)
        data = self.client.json("POST", "/api/v1/lineage/edges/touching", **json_body(body))
        return [(a, b, c) for a, b, c in EdgeList.model_validate(data).edges]


def _edge_route(edge: tuple[str, str, str]) -> str | None:
    """Where the server takes an edge: the pipeline run it starts at, or the tracking run
    it touches; None for any other edge (a client adds edges of its own runs only)."""
    source, target, _ = edge
    kind, _, run_id = source.partition(":")
    if kind == "pipeline_run":
        return f"/api/v1/pipeline-runs/{_seg(run_id)}/edges"
    for node in (target, source):
        kind, _, run_id = node.partition(":")
        if kind == "run":
            return f"/api/v1/runs/{_seg(run_id)}/edges"
    return None


def _plain(output: OutputRecord) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(output)


class RestScheduleStore:
    """ScheduleStore over ``/api/v1/schedules``: ticks are claimed in the server's database."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def save_schedule(self, schedule: Schedule) -> None:
        """PUT /api/v1/schedules/{name}."""
        body = ScheduleWire.of(schedule)
        self.client.json("PUT", f"/api/v1/schedules/{_seg(schedule.name)}", **json_body(body))

    def get_schedule(self, name: str) -> Schedule:
        """GET /api/v1/schedules/{name}."""
        data = self.client.json("GET", f"/api/v1/schedules/{_seg(name)}")
        return ScheduleWire.model_validate(data).domain()

    def list_schedules(self) -> list[Schedule]:
        """GET /api/v1/schedules."""
        data = ScheduleList.model_validate(self.client.json("GET", "/api/v1/schedules"))
        return [s.domain() for s in data.schedules]

    def delete_schedule(self, name: str) -> None:
        """DELETE /api/v1/schedules/{name}."""
        self.client.json("DELETE", f"/api/v1/schedules/{_seg(name)}")

    def claim_tick(self, name: str, nominal_time: int, stale_before: int) -> TickStatus | None:
        """POST /api/v1/schedules/{name}/ticks/claim (not retried: a claim happens once)."""
        body = TickClaim(nominal_time=nominal_time, stale_before=stale_before)
        data = self.client.json(
            "POST",
            f"/api/v1/schedules/{_seg(name)}/ticks/claim",
            idempotent=False,
            **json_body(body),
        )
        return TickClaimed.model_validate(data).status

    def record_tick(self, tick: Tick) -> None:
        """POST /api/v1/schedules/{name}/ticks."""
        body = TickWire.of(tick)
        self.client.json(
            "POST", f"/api/v1/schedules/{_seg(tick.schedule)}/ticks", **json_body(body)
        )

    def finish_tick(
        self,
        name: str,
        nominal_time: int,
        status: TickStatus,
        pipeline_run_id: str | None,
        note: str | None,
    ) -> None:
        """POST /api/v1/schedules/{name}/ticks/{nominal_time}/finish."""
        body = TickFinish(status=status, pipeline_run_id=pipeline_run_id, note=note)
        self.client.json(
            "POST",
            f"/api/v1/schedules/{_seg(name)}/ticks/{int(nominal_time)}/finish",
            **json_body(body),
        )

    def list_ticks(self, name: str, limit: int) -> list[Tick]:
        """GET /api/v1/schedules/{name}/ticks."""
        data = self.client.json(
            "GET", f"/api/v1/schedules/{_seg(name)}/ticks", params={"limit": limit}
        )
        return [t.domain() for t in TickList.model_validate(data).ticks]


class RestBlobStore:
    """BlobStore over ``/api/v1/blobs``: uploads and downloads streamed, digests checked."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    @property
    def root(self) -> str:
        """The server's blob API."""
        return f"{self.client.base_url}/api/v1/blobs"

    def put_file(self, path: Path) -> BlobRef:
        """Upload a file, streamed; the server's digest must be the file's."""
        return self.put_chunks(file_chunks(path))

    def put_chunks(self, chunks: Iterable[bytes], max_size: int | None = None) -> BlobRef:
        """PUT /api/v1/blobs, hashing on the way to check the server's answer."""
        hasher = hashlib.sha256()
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise StoreError(f"blob is larger than the limit of {max_size} bytes")
                hasher.update(chunk)
                yield chunk

        data = self.client.upload("/api/v1/blobs", counted(), "application/octet-stream")
        stored = BlobRead.model_validate(data)
        if stored.digest != hasher.hexdigest() or stored.size != size:
            raise StoreError(
                f"the server stored {stored.digest[:12]}... ({stored.size} bytes) for bytes "
                f"that hash to {hasher.hexdigest()[:12]}... ({size} bytes)"
            )
        return BlobRef(stored.digest, stored.size)

    def exists(self, digest: str) -> bool:
        """HEAD /api/v1/blobs/{digest}."""
        try:
            self.client.request("HEAD", f"/api/v1/blobs/{check_digest(digest)}")
        except NotFoundError:
            return False
        return True

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """GET /api/v1/blobs/{digest}, verified against the digest as it streams."""
        check_digest(digest)

        def verified() -> Iterator[bytes]:
            hasher = hashlib.sha256()
            for chunk in self.client.download(f"/api/v1/blobs/{digest}"):
                hasher.update(chunk)
                yield chunk
            if hasher.hexdigest() != digest:
                raise StoreError(f"blob {digest[:12]}... came back changed from the server")

        return verified()

    def verify(self, digest: str) -> bool:
        """Download and re-hash."""
        try:
            for _ in self.read_chunks(digest):
                pass
        except StoreError:
            return False
        return True

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Refused: listing every blob runs where the blob store is."""
        raise StoreError("listing blobs runs on the server's machine: shipyard db check there")

    def delete(self, digest: str, *, older_than: float) -> bool:
        """Refused: only the orphan sweep deletes, where the blob store is."""
        raise StoreError("deleting blobs runs on the server's machine: shipyard db check there")

    def delete_temp(self, older_than: float) -> int:
        """Nothing to do: uploads spool on the server."""
        return 0
