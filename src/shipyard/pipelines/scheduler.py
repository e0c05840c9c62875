"""One scheduler pass: record missed ticks, claim the newest, run it, record the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from shipyard.core.clock import now_ms
from shipyard.core.errors import ShipyardError
from shipyard.pipelines.models import PipelineStatus
from shipyard.pipelines.ports import ScheduleStore
from shipyard.pipelines.schedules import (
    Schedule,
    Tick,
    TickStatus,
    due_ticks,
    stale_after,
    to_ms,
)

logger = logging.getLogger(__name__)

# Runs a schedule's pipeline for one nominal time; returns (pipeline run id, status).
RunSchedule = Callable[[Schedule, datetime], tuple[str, PipelineStatus]]


class Scheduler:
    """Starts due pipeline runs; safe to run as several processes against one store."""

    def __init__(self, store: ScheduleStore, run: RunSchedule) -> None:
        self.store = store
        self.run = run

    def run_pending(self, now: datetime | None = None) -> list[Tick]:
        """Handle every enabled schedule once; return the ticks recorded in this pass."""
        moment = now or datetime.now(tz=UTC)
        recorded: list[Tick] = []
        for schedule in self.store.list_schedules():
            if schedule.enabled:
                recorded.extend(self._handle(schedule, moment))
        return recorded

    def _handle(self, schedule: Schedule, now: datetime) -> list[Tick]:
        ticks = due_ticks(schedule, now)
        if not ticks:
            return []
        recorded = []
        *missed, latest = ticks
        for moment in missed:
            tick = Tick(
                schedule.name,
                to_ms(moment),
                TickStatus.MISSED,
                None,
                now_ms(),
                "no scheduler was running at this time; only the newest due tick runs",
            )
            self.store.record_tick(tick)
            recorded.append(tick)
        nominal = to_ms(latest)
        stale_before = to_ms(now - stale_after())
        claimed = self.store.claim_tick(schedule.name, nominal, stale_before)
        if claimed is None:
            return recorded  # another scheduler took this tick
        if claimed is TickStatus.SKIPPED:
            logger.warning("schedule %s: previous run still going; tick skipped", schedule.name)
            recorded.append(
                Tick(
                    schedule.name,
                    nominal,
                    TickStatus.SKIPPED,
                    None,
                    now_ms(),
                    "the previous run of this schedule was still running",
                )
            )
            return recorded
        try:
            run_id, status = self.run(schedule, latest)
        except ShipyardError as exc:
            note = f"{type(exc).__name__}: {exc}"[:2000]
            self.store.finish_tick(schedule.name, nominal, TickStatus.FAILED, None, note)
            recorded.append(Tick(schedule.name, nominal, TickStatus.FAILED, None, now_ms(), note))
            return recorded
        final = TickStatus.COMPLETED if status is PipelineStatus.COMPLETED else TickStatus.FAILED
        self.store.finish_tick(schedule.name, nominal, final, run_id, None)
        recorded.append(Tick(schedule.name, nominal, final, run_id, now_ms()))
        return recorded
