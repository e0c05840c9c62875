"""The process-pool executor: independent steps run in parallel in worker processes.

Workers are started with ``forkserver`` (never a bare fork of this multi-threaded process)
and reused across steps. Each worker opens the store itself, imports the step from its
pipeline's module, and writes the outputs to the blob store, so only small records travel
back. A step past its timeout, or one that kills its worker, fails with a clear message; the
pool is rebuilt and the other steps that were running are submitted again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache

from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.core.settings import Settings
from shipyard.pipelines.executors import StepFailedError, StepJob, WorkResult
from shipyard.pipelines.graph import Step

logger = logging.getLogger(__name__)


#: Builds a worker's step runner on the driver's store, as the driver (the SDK's
#: ``worker_runner``). Module level, so it travels to workers by reference.
WorkerFactory = Callable[[Settings], object]


@cache
def _worker_runner(
    factory: WorkerFactory, uri: str, artifacts: str, token: str | None = None
) -> object:
    """One runner per worker process, on the same store as the parent."""
    if token is not None:  # a server store: the worker acts with the driver's token
        return factory(Settings(uri=uri, artifacts=artifacts, token=token))
    return factory(Settings(uri=uri, artifacts=artifacts))


def run_in_worker(
    factory: WorkerFactory, uri: str, artifacts: str, job: StepJob, token: str | None = None
) -> WorkResult:
    """Entry point in the worker process (module level, so it pickles by reference)."""
    from shipyard.pipelines.loader import import_module_of
    from shipyard.pipelines.service import PipelineRunner

    active = _worker_runner(factory, uri, artifacts, token)
    if not isinstance(active, PipelineRunner):
        raise InvalidInputError(f"a worker needs a database store; got {uri}")
    where = job.target.rpartition(":")[0]
    step = getattr(import_module_of(where), job.step_attr, None)
    if not isinstance(step, Step):
        raise StepFailedError(
            f"step {job.node!r} is not importable as {where}:{job.step_attr}",
            f"PipelineError: the processes executor imports steps from {where!r}; define "
            f"step {job.step_attr!r} at module level there",
            0,
        )
    return active.work(job, step)


@dataclass
class _Flight:
    job: StepJob
    step: Step
    outer: Future[WorkResult]
    deadline: float | None
    solo: bool = False


class ProcessExecutor:
    """Steps on a pool of worker processes (``executor="processes"``)."""

    name = "processes"

    def __init__(
        self, settings: Settings, factory: WorkerFactory, max_workers: int | None = None
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.max_workers = max_workers or max(1, os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        self._flights: dict[Future[WorkResult], _Flight] = {}
        self._quarantine: list[_Flight] = []
        self._lock = threading.Lock()

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers,
                mp_context=multiprocessing.get_context("forkserver"),
            )
        return self._pool

    def submit(self, job: StepJob, step: Step) -> Future[WorkResult]:
        """Send a step to a worker."""
        if ":" not in job.target or "<" in job.target:
            raise PipelineError(
                f"step {job.node!r}: the processes executor needs the pipeline defined at "
                "module level in a file or module"
            )
        outer: Future[WorkResult] = Future()
        deadline = time.monotonic() + job.options.timeout if job.options.timeout else None
        self._launch(_Flight(job, step, outer, deadline))
        return outer

    def _launch(self, flight: _Flight) -> None:
        pool = self._ensure_pool()
        inner = pool.submit(
            run_in_worker,
            self.factory,
            self.settings.store_uri,
            self.settings.artifact_root,
            flight.job,
        )
        with self._lock:
            self._flights[inner] = flight
        inner.add_done_callback(self._settle)

    def _settle(self, inner: Future[WorkResult]) -> None:
        with self._lock:
            flight = self._flights.pop(inner, None)
        if flight is None or flight.outer.done():
            return
        try:
            flight.outer.set_result(inner.result())
        except StepFailedError as exc:
            flight.outer.set_exception(exc)
        except BrokenProcessPool:
            if flight.solo:  # it ran alone, so it is the step that killed its worker
                flight.outer.set_exception(
                    StepFailedError(
                        f"step {flight.job.node!r} killed its worker process",
                        f"PipelineError: step {flight.job.node!r} killed its worker process "
                        "(it exited or was killed, e.g. out of memory)",
                        1,
                    )
                )
            else:  # any step in flight may be the culprit: each reruns alone to find out
                with self._lock:
                    self._quarantine.append(flight)
        except Exception as exc:  # noqa: BLE001 - any transport failure becomes the step's failure
            flight.outer.set_exception(StepFailedError(str(exc), f"{type(exc).__name__}: {exc}", 1))

    def check_deadlines(self) -> None:
        """Fail overdue steps; after a dead worker, rerun the affected steps one at a time."""
        now = time.monotonic()
        with self._lock:
            overdue = [
                f for f in self._flights.values() if f.deadline is not None and now > f.deadline
            ]
            survivors = [f for f in self._flights.values() if f not in overdue]
            if overdue:
                self._flights.clear()
        if overdue:
            for flight in overdue:
                flight.outer.set_exception(
                    StepFailedError(
                        f"step {flight.job.node!r} timed out",
                        f"PipelineError: step {flight.job.node!r} timed out after "
                        f"{flight.job.options.timeout:g}s (its worker was stopped)",
                        1,
                    )
                )
            self._kill_pool()
            for flight in survivors:
                self._launch(flight)
        with self._lock:
            if not self._quarantine or self._flights:
                return
            flight = self._quarantine.pop(0)
        self._kill_pool()  # the pool broke: start a fresh one
        flight.solo = True
        if flight.deadline is not None:
            flight.deadline = time.monotonic() + (flight.job.options.timeout or 0)
        self._launch(flight)

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
