"""Executors decide where a step's work runs; the runner keeps caching, records and lineage.

``local`` runs steps one after another in this process. Other executors (the process pool
in ``shipyard.executors.processes``, Ray tasks in ``shipyard.executors.ray_tasks``)
implement the same small interface.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.pipelines.graph import Step
from shipyard.pipelines.models import OutputRecord, StepOptions


@dataclass(frozen=True)
class StepJob:
    """Everything a worker needs to run one step (picklable: no live objects)."""

    node: str
    step_attr: str
    target: str
    run_id: str
    options: StepOptions
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, OutputRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkResult:
    """A step's stored outputs and how many attempts it took."""

    outputs: tuple[OutputRecord, ...]
    attempts: int


class StepFailedError(Exception):
    """Raised by a worker: the step's own failure, with its traceback text and attempts."""

    def __init__(self, message: str, traceback_text: str, attempts: int) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (StepFailedError, (str(self), self.traceback_text, self.attempts))


Work = Callable[[StepJob, Step], WorkResult]


class Executor(Protocol):
    """Where step work runs."""

    name: str

    def submit(self, job: StepJob, step: Step) -> Future[WorkResult]:
        """Start a step; the future holds its WorkResult or a StepFailedError."""
        ...

    def check_deadlines(self) -> None:
        """Fail running steps that are past their timeout (and stop their work)."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


class LocalExecutor:
    """Steps in this process, one at a time, in dependency order."""

    name = "local"

    def __init__(self, work: Work) -> None:
        self._work = work

    def submit(self, job: StepJob, step: Step) -> Future[WorkResult]:
        """Run now; the future is already done."""
        future: Future[WorkResult] = Future()
        try:
            future.set_result(self._work(job, step))
        except StepFailedError as exc:
            future.set_exception(exc)
        return future

    def check_deadlines(self) -> None:
        """Timeouts are enforced inside the work itself."""

    def close(self) -> None:
        """Nothing to release."""
