"""Records of pipelines: options of a step, runs of pipelines and steps, stored outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StepStatus(StrEnum):
    """Lifecycle of one step in one pipeline run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def is_done(self) -> bool:
        """Whether the step produced its outputs (ran or reused them)."""
        return self in (StepStatus.COMPLETED, StepStatus.CACHED)


class PipelineStatus(StrEnum):
    """Lifecycle of a pipeline run."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs: caching, retries with backoff, a timeout, and resources."""

    cache: bool = True
    retries: int = 0
    retry_delay_seconds: float | tuple[float, ...] = 0.0
    timeout: float | None = None
    cpus: float = 1.0
    memory_mb: int | None = None
    environment: tuple[str, ...] = ()

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), Prefect-style."""
        if isinstance(self.retry_delay_seconds, tuple):
            if not self.retry_delay_seconds:
                return 0.0
            return self.retry_delay_seconds[min(attempt, len(self.retry_delay_seconds)) - 1]
        return float(self.retry_delay_seconds)


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """A stored output of a step: its blob and how to turn it back into a value."""

    name: str
    digest: str
    size: int
    materializer: str
    type_name: str
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepRunRecord:
    """One step of one pipeline run."""

    id: str
    pipeline_run_id: str
    step: str
    status: StepStatus
    cache_key: str | None
    run_id: str | None
    started_at: int | None
    ended_at: int | None
    attempts: int = 0
    error: str | None = None
    code_hash: str | None = None
    outputs: tuple[OutputRecord, ...] = ()
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelineRunRecord:
    """One run of a pipeline, with its parameters and its steps."""

    id: str
    pipeline: str
    status: PipelineStatus
    params: dict[str, object]
    run_id: str | None
    started_at: int
    ended_at: int | None
    executor: str
    steps: tuple[StepRunRecord, ...] = field(default_factory=tuple)
