"""Schedules for users: register a pipeline on a cron schedule, and run due ticks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.pipelines.graph import PipelineDefinition
from shipyard.pipelines.loader import import_target
from shipyard.pipelines.models import PipelineStatus
from shipyard.pipelines.ports import ScheduleStore
from shipyard.pipelines.scheduler import Scheduler
from shipyard.pipelines.schedules import EXECUTORS, Schedule, check_cron, check_schedule_name
from shipyard.sdk import context
from shipyard.sdk.pipelines import runner


def schedule_store() -> ScheduleStore:
    """The schedules of the current (database) store."""
    backend = context.current().get_backend()
    if backend.pipelines is None:
        raise InvalidInputError("schedules live in a database store, not behind a server URI")
    return backend.pipelines.schedules


def load_pipeline(target: str) -> PipelineDefinition:
    """The @pipeline named by FILE.py:FUNC or MODULE:FUNC."""
    found = import_target(target)
    if not isinstance(found, PipelineDefinition):
        raise InvalidInputError(f"{target!r} is not a @pipeline (got {type(found).__name__})")
    return found


def add_schedule(
    name: str,
    target: str,
    *,
    cron: str | None = None,
    timezone: str | None = None,
    params: dict[str, Any] | None = None,
    from_strings: bool = False,
    executor: str = "local",
) -> Schedule:
    """Register (or update) a schedule; cron and zone default to the @pipeline's own."""
    check_schedule_name(name)
    definition = load_pipeline(target)
    cron = cron or definition.schedule
    if not cron:
        raise InvalidInputError(
            f"pipeline {definition.name!r} declares no schedule; pass a cron expression"
        )
    zone = timezone or definition.timezone
    check_cron(cron, zone)
    checked = definition.validate_params(params or {}, from_strings=from_strings)
    if executor not in EXECUTORS:
        raise InvalidInputError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    schedule = Schedule(name, target, cron, zone, checked, True, now_ms(), executor=executor)
    store = schedule_store()
    store.save_schedule(schedule)
    return store.get_schedule(name)


def _run(schedule: Schedule, nominal: datetime) -> tuple[str, PipelineStatus]:
    definition = load_pipeline(schedule.target)
    record = runner().run(
        definition,
        schedule.params,
        executor=schedule.executor,
        tags={"shipyard.schedule": schedule.name, "shipyard.nominal_time": nominal.isoformat()},
    )
    return record.id, record.status


def scheduler(allowed: list[str] | None = None) -> Scheduler:
    """A scheduler over the current store that runs pipelines in this process; with
    ``allowed``, only targets starting with one of those prefixes (``*``: any)."""
    if allowed is None or "*" in allowed:
        return Scheduler(schedule_store(), _run)

    def guarded(schedule: Schedule, nominal: datetime) -> tuple[str, PipelineStatus]:
        if not any(schedule.target.startswith(prefix) for prefix in allowed):
            raise PermissionDeniedError(
                f"target {schedule.target!r} is not among the targets this scheduler may run "
                f"(SHIPYARD_SCHEDULE_TARGETS: {', '.join(allowed) or 'none'})"
            )
        return _run(schedule, nominal)

    return Scheduler(schedule_store(), guarded)
