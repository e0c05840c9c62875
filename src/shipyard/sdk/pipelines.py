"""``@step`` and ``@pipeline`` for users: definitions from the pipelines capability, and
``Pipeline.run`` wired to the current store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from shipyard.core.errors import InvalidInputError, PipelineError
from shipyard.core.settings import Settings
from shipyard.pipelines.executors import Executor
from shipyard.pipelines.graph import PipelineDefinition, step
from shipyard.pipelines.materializers import Materializer, MaterializerRegistry
from shipyard.pipelines.models import PipelineRunRecord, PipelineStatus
from shipyard.pipelines.service import OnEvent, PipelineRunner
from shipyard.sdk import context
from shipyard.sdk.active_run import ActiveRun

__all__ = ["Pipeline", "PipelineRun", "pipeline", "register_materializer", "runner", "step"]


def register_materializer(materializer: Materializer) -> None:
    """Teach pipelines to store another type (takes precedence over the built-ins)."""
    context.current().materializers.append(materializer)


@contextlib.contextmanager
def attach(run_id: str) -> Iterator[None]:
    """Make an existing run the active one for the fluent API while a step runs.

    The step gets a context of its own (same store, its run on the stack), so a step that
    outlives its timeout on another thread never becomes the caller's active run.
    """
    parent = context.current()
    backend = parent.get_backend()
    handle = ActiveRun(
        backend.tracking.get_run(run_id),
        backend,
        buffer_size=parent.settings.metric_buffer_size,
        flush_interval=parent.settings.flush_interval,
        on_end=lambda r: None,
    )
    child = context.Context(parent.settings, backend, [handle], parent.materializers)
    token = context.push(child)
    try:
        yield
    finally:
        context.pop(token)
        handle.buffer.close()


def runner() -> PipelineRunner:
    """A PipelineRunner on the current store (embedded, PostgreSQL or a server)."""
    ctx = context.current()
    backend = ctx.get_backend()
    if backend.pipelines is None:
        raise InvalidInputError(
            "pipelines run against a database store (a folder, sqlite:///..., or "
            f"postgresql+psycopg://...); SHIPYARD_URI is a server: {backend.uri}"
        )
    registry = MaterializerRegistry()
    for item in ctx.materializers:
        registry.register(item)
    from shipyard.executors.processes import ProcessExecutor

    settings = ctx.settings
    return PipelineRunner(
        backend.tracking,
        backend.pipelines.blobs,
        backend.pipelines.store,
        registry,
        activate=attach,
        executors={
            "processes": lambda: ProcessExecutor(settings, worker_runner),
            "ray": lambda: _ray(settings),
        },
        lineage=backend.pipelines.lineage,
        namespace=backend.pipelines.namespace,
        datasets=backend.pipelines.datasets,
    )


def worker_runner(settings: Settings) -> PipelineRunner:
    """The runner a worker process or Ray task uses: the driver's store, as the driver
    (with its token when the store is a server)."""
    context.replace(settings)
    return runner()


def _ray(settings: Settings) -> Executor:
    from shipyard.executors.ray_tasks import RayExecutor

    return RayExecutor(settings, worker_runner)


class PipelineRun:
    """A finished pipeline run: its record, and its step outputs on demand."""

    def __init__(self, record: PipelineRunRecord, runner: PipelineRunner) -> None:
        self.record = record
        self._runner = runner

    @property
    def id(self) -> str:
        """The pipeline run id (``prun_...``)."""
        return self.record.id

    @property
    def status(self) -> PipelineStatus:
        """COMPLETED or FAILED."""
        return self.record.status

    def load(self, step_name: str, output: str = "output") -> Any:
        """Load one output of one step."""
        for step_run in self.record.steps:
            if step_run.step == step_name:
                for out in step_run.outputs:
                    if out.name == output:
                        return self._runner.load_output(out)
                raise InvalidInputError(
                    f"step {step_name!r} has no output {output!r} in run {self.id} "
                    f"(status {step_run.status.value})"
                )
        raise InvalidInputError(f"pipeline run {self.id} has no step {step_name!r}")

    def __repr__(self) -> str:
        return f"<PipelineRun {self.id} {self.record.pipeline} {self.status.value}>"


class Pipeline(PipelineDefinition):
    """A pipeline users can run: ``training.run(n=500)``."""

    def run(
        self,
        *,
        executor: str = "local",
        cache: bool = True,
        raise_on_failure: bool = True,
        on_event: OnEvent | None = None,
        **params: Any,
    ) -> PipelineRun:
        """Run the pipeline with these parameters; raise PipelineError if a step fails."""
        active = runner()
        record = active.run(self, params, executor=executor, cache=cache, on_event=on_event)
        result = PipelineRun(record, active)
        if raise_on_failure and record.status is PipelineStatus.FAILED:
            _raise_failure(record)
        return result


def _raise_failure(record: PipelineRunRecord) -> None:
    failed = [s for s in record.steps if s.status.value == "FAILED"]
    first = failed[0] if failed else None
    last_line = (first.error or "").strip().splitlines()[-1] if first and first.error else "failed"
    raise PipelineError(
        f"pipeline {record.pipeline!r} run {record.id} failed at step "
        f"{first.step if first else '?'!r}: {last_line} "
        f"(shipyard pipeline show {record.id}; resume with shipyard pipeline resume)",
        pipeline_run_id=record.id,
        step=first.step if first else None,
    )


def pipeline(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    schedule: str | None = None,
    timezone: str = "UTC",
    cache: bool = True,
) -> Any:
    """Declare a pipeline: ``@pipeline`` or ``@pipeline(schedule="0 3 * * *")``."""

    def wrap(func: Callable[..., Any]) -> Pipeline:
        return Pipeline(func, name=name, schedule=schedule, timezone=timezone, cache=cache)

    return wrap(fn) if fn is not None else wrap
