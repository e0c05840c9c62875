"""The storage pipelines need; implemented in store/ (SQL)."""

from __future__ import annotations

from typing import Protocol

from shipyard.pipelines.models import (
    OutputRecord,
    PipelineRunRecord,
    PipelineStatus,
    StepRunRecord,
)


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
    ) -> None:
        """Insert or replace a step run, in one transaction with its lineage edges and,
        when ``cache`` is set, the cache entry for its key and outputs."""
        ...

    def get_pipeline_run(self, run_id: str) -> PipelineRunRecord:
        """A pipeline run with its step runs in order; NotFoundError when unknown."""
        ...

    def list_pipeline_runs(self, pipeline: str | None, limit: int) -> list[PipelineRunRecord]:
        """Newest first, without step details."""
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

    def drop_cache(self, key: str) -> None:
        """Forget a cache entry (its blobs went missing)."""
        ...

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Append lineage edges (source node, target node, relation)."""
        ...

    def edges_touching(self, nodes: list[str]) -> list[tuple[str, str, str]]:
        """Edges whose source or target is one of ``nodes``."""
        ...
