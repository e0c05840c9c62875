"""SqlScheduleStore: the ScheduleStore port on SQLAlchemy Core."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Row, delete, desc, select, update

from shipyard.core.clock import now_ms
from shipyard.core.errors import NotFoundError
from shipyard.pipelines.schedules import Schedule, Tick, TickStatus
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing
from shipyard.store.tracking import upsert


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        name=row.name,
        target=row.target,
        cron=row.cron,
        timezone=row.timezone,
        params=json.loads(row.params),
        enabled=bool(row.enabled),
        created_at=row.created_at,
        last_tick_at=row.last_tick_at,
        executor=row.executor,
    )


def _tick(row: Row[Any]) -> Tick:
    return Tick(
        row.schedule,
        row.nominal_time,
        TickStatus(row.status),
        row.pipeline_run_id,
        row.recorded_at,
        row.note,
    )


class SqlScheduleStore:
    """Schedules and ticks in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule."""
        values = {
            "name": schedule.name,
            "target": schedule.target,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "params": json.dumps(schedule.params, default=repr),
            "enabled": schedule.enabled,
            "created_at": schedule.created_at,
            "last_tick_at": schedule.last_tick_at,
            "executor": schedule.executor,
        }
        with writing(self.engine) as conn:
            stmt = upsert(conn, t.schedules).values(values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        k: stmt.excluded[k]
                        for k in values
                        if k not in ("name", "created_at", "last_tick_at")
                    },
                )
            )

    def get_schedule(self, name: str) -> Schedule:
        """A schedule by name."""
        with reading(self.engine) as conn:
            row = conn.execute(select(t.schedules).where(t.schedules.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"schedule {name!r} does not exist", schedule=name)
        return _schedule(row)

    def list_schedules(self) -> list[Schedule]:
        """Every schedule by name."""
        with reading(self.engine) as conn:
            rows = conn.execute(select(t.schedules).order_by(t.schedules.c.name)).all()
        return [_schedule(r) for r in rows]

    def delete_schedule(self, name: str) -> None:
        """Remove a schedule; its ticks stay."""
        with writing(self.engine) as conn:
            gone = conn.execute(delete(t.schedules).where(t.schedules.c.name == name))
        if gone.rowcount == 0:
            raise NotFoundError(f"schedule {name!r} does not exist", schedule=name)

    def claim_tick(self, name: str, nominal_time: int, stale_before: int) -> TickStatus | None:
        """STARTED, SKIPPED (a run is going) or None (already claimed), atomically."""
        ticks = t.schedule_ticks.c
        with writing(self.engine) as conn:
            lock = select(t.schedules.c.name).where(t.schedules.c.name == name)
            if conn.dialect.name == "postgresql":
                lock = lock.with_for_update()
            if conn.execute(lock).first() is None:
                raise NotFoundError(f"schedule {name!r} does not exist", schedule=name)
            exists = conn.execute(
                select(ticks.status).where(
                    ticks.schedule == name, ticks.nominal_time == nominal_time
                )
            ).first()
            if exists is not None:
                return None
            going = conn.execute(
                select(ticks.nominal_time).where(
                    ticks.schedule == name,
                    ticks.status == TickStatus.STARTED.value,
                    ticks.recorded_at >= stale_before,
                )
            ).first()
            status = TickStatus.SKIPPED if going is not None else TickStatus.STARTED
            conn.execute(
                t.schedule_ticks.insert().values(
                    schedule=name,
                    nominal_time=nominal_time,
                    status=status.value,
                    pipeline_run_id=None,
                    recorded_at=now_ms(),
                    note="the previous run of this schedule was still running"
                    if status is TickStatus.SKIPPED
                    else None,
                )
            )
            conn.execute(
                update(t.schedules)
                .where(t.schedules.c.name == name)
                .values(last_tick_at=nominal_time)
            )
            return status

    def record_tick(self, tick: Tick) -> None:
        """Record a tick that will not run, unless already recorded."""
        with writing(self.engine) as conn:
            conn.execute(
                upsert(conn, t.schedule_ticks)
                .values(
                    schedule=tick.schedule,
                    nominal_time=tick.nominal_time,
                    status=tick.status.value,
                    pipeline_run_id=tick.pipeline_run_id,
                    recorded_at=tick.recorded_at,
                    note=tick.note,
                )
                .on_conflict_do_nothing()
            )
            conn.execute(
                update(t.schedules)
                .where(t.schedules.c.name == tick.schedule)
                .values(last_tick_at=tick.nominal_time)
            )

    def finish_tick(
        self,
        name: str,
        nominal_time: int,
        status: TickStatus,
        pipeline_run_id: str | None,
        note: str | None,
    ) -> None:
        """Close a STARTED tick."""
        ticks = t.schedule_ticks.c
        with writing(self.engine) as conn:
            conn.execute(
                update(t.schedule_ticks)
                .where(ticks.schedule == name, ticks.nominal_time == nominal_time)
                .values(status=status.value, pipeline_run_id=pipeline_run_id, note=note)
            )

    def list_ticks(self, name: str, limit: int) -> list[Tick]:
        """Newest first."""
        ticks = t.schedule_ticks.c
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(t.schedule_ticks)
                .where(ticks.schedule == name)
                .order_by(desc(ticks.nominal_time))
                .limit(limit)
            ).all()
        return [_tick(r) for r in rows]
