"""The storage tracking needs, as Protocols; adapters in store/, artifacts/ and remote/."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from shipyard.tracking.models import (
    ArtifactRecord,
    Experiment,
    Metric,
    MetricBatch,
    Run,
    RunPage,
    RunSource,
    RunStatus,
)
from shipyard.tracking.search import RunQuery


class TrackingStore(Protocol):
    """Experiments, runs and their data. Implemented by SQL and REST adapters alike."""

    def create_experiment(self, name: str, tags: dict[str, str]) -> Experiment:
        """Create an experiment; ConflictError if the name is taken."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id; NotFoundError when unknown."""
        ...

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        ...

    def list_experiments(self) -> list[Experiment]:
        """Return every experiment, oldest first."""
        ...

    def create_run(
        self,
        experiment_id: str,
        name: str,
        parent_id: str | None,
        tags: dict[str, str],
        source: RunSource,
    ) -> Run:
        """Create a RUNNING run."""
        ...

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, latest metrics and tags; NotFoundError if unknown."""
        ...

    def set_run_status(self, run_id: str, status: RunStatus, end_time: int | None) -> Run:
        """Set a run's status and end time."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Delete a run: it no longer shows in searches and lookups."""
        ...

    def heartbeat(self, run_id: str, at: int) -> None:
        """Record that the run's client is alive at ``at`` (ms)."""
        ...

    def expire_runs(self, silent_since: int, at: int) -> list[str]:
        """End as KILLED every RUNNING run with no sign of life since ``silent_since``."""
        ...

    def log_batch(self, batch: MetricBatch) -> None:
        """Append metrics and set params and tags in one transaction; idempotent per batch_id.

        Raises:
            ConflictError: a param already holds a different value.
        """
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of a metric, by step then timestamp."""
        ...

    def search_runs(self, experiment_ids: list[str], query: RunQuery) -> RunPage:
        """Return one page of the runs of these experiments that match the query."""
        ...


class RunArtifactStore(Protocol):
    """Named artifacts of runs, stored as content-addressed blobs."""

    def log_chunks(
        self,
        run_id: str,
        name: str,
        chunks: Iterable[bytes],
        media_type: str,
        max_size: int | None = None,
    ) -> ArtifactRecord:
        """Store streamed bytes as a run's artifact under ``name``, never whole in memory."""
        ...

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts by name."""
        ...

    def get_artifact(self, run_id: str, name: str) -> ArtifactRecord:
        """Return one artifact's record; NotFoundError when the run has no such artifact."""
        ...

    def read_artifact(self, run_id: str, name: str) -> Iterator[bytes]:
        """Yield an artifact's bytes in chunks, checking them against the recorded digest."""
        ...


class ArtifactRecordStore(Protocol):
    """The records that map a run's artifact names to blobs (kept with the metadata)."""

    def record_artifact(self, record: ArtifactRecord) -> ArtifactRecord:
        """Insert or replace the record of ``(run_id, name)``."""
        ...

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifact records by name."""
        ...

    def get_artifact(self, run_id: str, name: str) -> ArtifactRecord:
        """Return one record; NotFoundError when missing."""
        ...
