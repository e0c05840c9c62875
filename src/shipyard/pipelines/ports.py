"""The storage pipelines need; implemented in store/ (SQL)."""

from __future__ import annotations

from typing import Any, Protocol

from shipyard.pipelines.models import (
    OutputRecord,
    PipelineRunRecord,
    PipelineStatus,
    StepRunRecord,
)
from shipyard.pipelines.schedules import Schedule, Tick, TickStatus
from shipyard.tracking.models import RunStatus


class PipelineStore(Protocol):
    """Pipeline runs, step runs, the step cache and lineage edges."""

    def create_pipeline_run(self, record: PipelineRunRecord) -> None:
        """Insert a pipeline run."""
        ...

    def finish_pipeline_run(self, run_id: str, status: PipelineStatus, ended_at: int) -> None:
        """Set a pipeline run's final status."""
        ...

    def save_step_run(
        self,
        record: StepRunRecord,
        position: int,
        *,
        edges: list[tuple[str, str, str]] | None = None,
        cache: bool = False,
        end_tracked_run: RunStatus | None = None,
    ) -> None:
        """Insert or replace a step run, in one transaction with its lineage edges, the
        cache entry for its key and outputs (when ``cache``), and the end of the step's
        tracked run (when ``end_tracked_run``): a step and its run end together or not at all."""
        ...

    def get_pipeline_run(self, run_id: str) -> PipelineRunRecord:
        """A pipeline run with its step runs in order; NotFoundError when unknown."""
        ...

    def list_pipeline_runs(self, pipeline: str | None, limit: int) -> list[PipelineRunRecord]:
        """Newest first, without step details."""
        ...

    def step_counts(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """Steps per status of each pipeline run (a listing shows them without the steps)."""
        ...

    def list_pipelines(self) -> list[tuple[str, int, int]]:
        """(name, runs, last started) per pipeline."""
        ...

    def get_cache(self, key: str) -> tuple[OutputRecord, ...] | None:
        """The outputs stored for a cache key, if any."""
        ...

    def put_cache(
        self, key: str, step: str, step_run_id: str, outputs: tuple[OutputRecord, ...]
    ) -> None:
        """Remember outputs under a cache key (replacing an older entry)."""
        ...

    def cache_entry(self, key: str) -> tuple[str, str, tuple[OutputRecord, ...]] | None:
        """A cache entry with where it came from: (step, step run id, outputs)."""
        ...

    def step_run_pipeline(self, step_run_id: str) -> str:
        """The pipeline run a step run belongs to; NotFoundError when unknown."""
        ...

    def drop_cache(self, key: str) -> None:
        """Forget a cache entry (its blobs went missing)."""
        ...

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Append lineage edges (source node, target node, relation)."""
        ...

    def record_lineage_event(
        self, event: dict[str, Any], edges: list[tuple[str, str, str]]
    ) -> None:
        """Keep a received OpenLineage event and its lineage edges, atomically."""
        ...

    def edges_touching(self, nodes: list[str]) -> list[tuple[str, str, str]]:
        """Edges whose source or target is one of ``nodes``."""
        ...


class ScheduleStore(Protocol):
    """Schedules and the ticks they produced."""

    def save_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule (its tick history stays)."""
        ...

    def get_schedule(self, name: str) -> Schedule:
        """A schedule by name; NotFoundError when unknown."""
        ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule by name."""
        ...

    def delete_schedule(self, name: str) -> None:
        """Remove a schedule (its ticks stay, for the record)."""
        ...

    def claim_tick(self, name: str, nominal_time: int, stale_before: int) -> TickStatus | None:
        """Atomically claim a tick: STARTED if the schedule has no run going (one STARTED
        before ``stale_before`` does not count), SKIPPED if it has, None if the tick was
        already claimed. Moves the schedule's last tick forward either way."""
        ...

    def record_tick(self, tick: Tick) -> None:
        """Record a tick that will not run (MISSED), unless it is already recorded."""
        ...

    def finish_tick(
        self,
        name: str,
        nominal_time: int,
        status: TickStatus,
        pipeline_run_id: str | None,
        note: str | None,
    ) -> None:
        """Close a STARTED tick with its outcome."""
        ...

    def list_ticks(self, name: str, limit: int) -> list[Tick]:
        """A schedule's ticks, newest first."""
        ...


class LineageSink(Protocol):
    """Where OpenLineage run events go (an HTTP endpoint, a file); never raises."""

    def emit(self, event: dict[str, Any]) -> None:
        """Send one event; failures are logged, never raised into the pipeline."""
        ...
