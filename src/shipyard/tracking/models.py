"""Domain records of tracking: plain frozen dataclasses, never ORM rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, overload


class RunStatus(StrEnum):
    """Lifecycle of a run; the names match MLflow's so filters read the same."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        """Tell whether the run has ended."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def experiment_id(self) -> str:
        """MLflow's ``Experiment.experiment_id``."""
        return self.id

    @property
    def creation_time(self) -> int:
        """MLflow's ``Experiment.creation_time`` (epoch ms)."""
        return self.created_at

    @property
    def lifecycle_stage(self) -> str:
        """MLflow's ``Experiment.lifecycle_stage`` (Shipyard keeps every experiment)."""
        return "active"


class Metric(NamedTuple):
    """One point of a metric's history (a NamedTuple: it is made once per log call)."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class RunSource:
    """Where a run's code came from, as far as it could be found."""

    git_commit: str | None = None
    entry_point: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A named artifact of a run, pointing at a content-addressed blob."""

    run_id: str
    name: str
    digest: str
    size: int
    media_type: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Run:
    """A tracked execution with its latest metric values, params and tags."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_id: str | None
    source: RunSource
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    # MLflow's spellings, so ``run.info.run_id`` and ``run.data.metrics`` work as there.
    @property
    def info(self) -> Run:
        """MLflow's ``run.info`` (this record: ``run_id``, ``status``, ``start_time``...)."""
        return self

    @property
    def data(self) -> Run:
        """MLflow's ``run.data`` (this record: ``params``, ``metrics``, ``tags``)."""
        return self

    @property
    def run_id(self) -> str:
        """MLflow's ``RunInfo.run_id``."""
        return self.id

    @property
    def run_name(self) -> str:
        """MLflow's ``RunInfo.run_name``."""
        return self.name

    @property
    def user_id(self) -> str:
        """MLflow's ``RunInfo.user_id``: who started the run."""
        return self.tags.get("shipyard.user", "")

    @property
    def lifecycle_stage(self) -> str:
        """MLflow's ``RunInfo.lifecycle_stage`` (deleted runs are never returned)."""
        return "active"


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run search; ``next_page_token`` is None on the last page.

    A sequence of its runs, as MLflow's ``PagedList`` is: ``len``, iteration, indexing and
    ``.token`` work the way MLflow code expects.
    """

    runs: list[Run]
    next_page_token: str | None

    @property
    def token(self) -> str | None:
        """MLflow's name for the next page's token."""
        return self.next_page_token

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    @overload
    def __getitem__(self, index: int) -> Run: ...

    @overload
    def __getitem__(self, index: slice) -> list[Run]: ...

    def __getitem__(self, index: int | slice) -> Run | list[Run]:
        return self.runs[index]


@dataclass(frozen=True, slots=True)
class MetricBatch:
    """Metrics, params and tags written together; ``batch_id`` makes a retry a no-op."""

    run_id: str
    batch_id: str
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
