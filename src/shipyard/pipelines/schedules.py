"""Schedules: when a pipeline is due, and what to do with ticks that were missed.

A schedule is a 5-field cron expression in an IANA time zone. Each due moment is a *tick*,
claimed once in the store (a unique row per schedule and nominal time), so two schedulers
never start the same tick and a crashed scheduler leaves a visible trace. When several ticks
fell due while no scheduler ran, the newest runs and the older ones are recorded as MISSED,
never silently dropped. A tick that comes while the previous run of the same schedule is
still going is recorded as SKIPPED: one schedule never runs twice at once.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.core.names import check_key

MAX_CATCH_UP = 1000  # ticks examined at most per schedule and pass


class TickStatus(StrEnum):
    """What became of one due moment of a schedule."""

    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    MISSED = "MISSED"
    SKIPPED = "SKIPPED"


#: Where a scheduled run's steps run: in the scheduler, in worker processes, or on Ray.
EXECUTORS = ("local", "processes", "ray")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A pipeline to run on a cron schedule with fixed parameters."""

    name: str
    target: str
    cron: str
    timezone: str
    params: dict[str, Any]
    enabled: bool
    created_at: int
    last_tick_at: int | None = None
    executor: str = "local"  # local, process or ray: where the scheduled run's steps run


@dataclass(frozen=True, slots=True)
class Tick:
    """One due moment of a schedule and its outcome."""

    schedule: str
    nominal_time: int
    status: TickStatus
    pipeline_run_id: str | None
    recorded_at: int
    note: str | None = None


def check_cron(cron: str, timezone: str) -> None:
    """Refuse anything but a valid 5-field cron expression and a known IANA zone."""
    from croniter import croniter

    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise InvalidInputError(
            f"schedule must be a 5-field cron expression such as '0 3 * * *'; got {cron!r}"
        )
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(
            f"timezone must be an IANA name such as 'Europe/Paris'; got {timezone!r}"
        ) from exc


def check_schedule_name(name: str) -> str:
    """Schedule names follow the key rules."""
    return check_key(name, "schedule name")


def due_ticks(schedule: Schedule, now: datetime) -> list[datetime]:
    """Every tick after the last one handled (or after creation) up to ``now``, oldest first."""
    from croniter import croniter

    zone = zoneinfo.ZoneInfo(schedule.timezone)
    start_ms = schedule.last_tick_at if schedule.last_tick_at is not None else schedule.created_at
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC).astimezone(zone)
    it = croniter(schedule.cron, start)
    ticks: list[datetime] = []
    while len(ticks) < MAX_CATCH_UP:
        tick = it.get_next(datetime)
        if tick > now.astimezone(zone):
            break
        ticks.append(tick)
    return ticks


def next_tick(schedule: Schedule, now: datetime) -> datetime:
    """The next due moment after ``now``."""
    from croniter import croniter

    zone = zoneinfo.ZoneInfo(schedule.timezone)
    result: datetime = croniter(schedule.cron, now.astimezone(zone)).get_next(datetime)
    return result


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def stale_after(minutes: int = 24 * 60) -> timedelta:
    """How long a STARTED tick may run before the scheduler stops waiting for it."""
    return timedelta(minutes=minutes)
