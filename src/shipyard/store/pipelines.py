"""SqlPipelineStore: the PipelineStore port on SQLAlchemy Core."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, desc, func, or_, select, update

from shipyard.core.clock import now_ms
from shipyard.core.errors import NotFoundError
from shipyard.pipelines.models import (
    OutputRecord,
    PipelineRunRecord,
    PipelineStatus,
    StepRunRecord,
    StepStatus,
)
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing
from shipyard.store.tracking import upsert
from shipyard.tracking.models import RunStatus


def _outputs_json(outputs: tuple[OutputRecord, ...]) -> str:
    return json.dumps(
        [
            {
                "name": o.name,
                "digest": o.digest,
                "size": o.size,
                "materializer": o.materializer,
                "type_name": o.type_name,
                "meta": o.meta,
            }
            for o in outputs
        ],
        default=str,
    )


def _outputs(text: str) -> tuple[OutputRecord, ...]:
    return tuple(
        OutputRecord(
            d["name"], d["digest"], d["size"], d["materializer"], d["type_name"], d.get("meta", {})
        )
        for d in json.loads(text)
    )


def _step(row: Row[Any]) -> StepRunRecord:
    return StepRunRecord(
        id=row.id,
        pipeline_run_id=row.pipeline_run_id,
        step=row.step,
        status=StepStatus(row.status),
        cache_key=row.cache_key,
        run_id=row.run_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        attempts=row.attempts,
        error=row.error,
        outputs=_outputs(row.outputs),
        inputs=tuple(json.loads(row.inputs)),
        code_hash=row.code_hash,
    )


def _pipeline_run(row: Row[Any], steps: tuple[StepRunRecord, ...] = ()) -> PipelineRunRecord:
    return PipelineRunRecord(
        id=row.id,
        pipeline=row.pipeline,
        status=PipelineStatus(row.status),
        params=json.loads(row.params),
        run_id=row.run_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        executor=row.executor,
        steps=steps,
    )


class SqlPipelineStore:
    """Pipeline runs, step runs, the cache and lineage in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._statements: dict[str, Any] = {}

    def create_pipeline_run(self, record: PipelineRunRecord) -> None:
        """Insert a pipeline run."""
        with writing(self.engine) as conn:
            conn.execute(
                t.pipeline_runs.insert().values(
                    id=record.id,
                    pipeline=record.pipeline,
                    status=record.status.value,
                    params=json.dumps(record.params, default=repr),
                    run_id=record.run_id,
                    executor=record.executor,
                    started_at=record.started_at,
                    ended_at=None,
                )
            )

    def finish_pipeline_run(self, run_id: str, status: PipelineStatus, ended_at: int) -> None:
        """Set the final status."""
        with writing(self.engine) as conn:
            conn.execute(
                update(t.pipeline_runs)
                .where(t.pipeline_runs.c.id == run_id)
                .values(status=status.value, ended_at=ended_at)
            )

    def _step_upsert(self, conn: Connection) -> Any:
        """The step-run upsert, built once per dialect (building it costs more than running it)."""
        stmt = self._statements.get(conn.dialect.name)
        if stmt is None:
            insert = upsert(conn, t.step_runs)
            columns = [c.name for c in t.step_runs.columns if c.name != "id"]
            stmt = insert.on_conflict_do_update(
                index_elements=["id"], set_={c: insert.excluded[c] for c in columns}
            )
            self._statements[conn.dialect.name] = stmt
        return stmt

    def save_step_run(
        self,
        record: StepRunRecord,
        position: int,
        *,
        edges: list[tuple[str, str, str]] | None = None,
        cache: bool = False,
        end_tracked_run: RunStatus | None = None,
    ) -> None:
        """Insert or replace a step run, with its edges, cache entry and the end of its
        tracked run, in one transaction."""
        values = {
            "id": record.id,
            "pipeline_run_id": record.pipeline_run_id,
            "position": position,
            "step": record.step,
            "status": record.status.value,
            "cache_key": record.cache_key,
            "code_hash": record.code_hash,
            "run_id": record.run_id,
            "started_at": record.started_at,
            "ended_at": record.ended_at,
            "attempts": record.attempts,
            "error": record.error,
            "inputs": json.dumps(list(record.inputs)),
            "outputs": _outputs_json(record.outputs),
        }
        with writing(self.engine) as conn:
            conn.execute(self._step_upsert(conn), values)
            if edges:
                now = now_ms()
                conn.execute(
                    t.lineage_edges.insert(),
                    [
                        {"source": a, "target": b, "relation": r, "created_at": now}
                        for a, b, r in edges
                    ],
                )
            if cache and record.cache_key:
                self._put_cache(conn, record.cache_key, record.step, record.id, record.outputs)
            if end_tracked_run is not None and record.run_id is not None:
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == record.run_id)
                    .values(status=end_tracked_run.value, end_time=now_ms())
                )

    def get_pipeline_run(self, run_id: str) -> PipelineRunRecord:
        """A pipeline run with its steps in order."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(t.pipeline_runs).where(t.pipeline_runs.c.id == run_id)
            ).first()
            if row is None:
                raise NotFoundError(f"pipeline run {run_id} does not exist", run_id=run_id)
            steps = conn.execute(
                select(t.step_runs)
                .where(t.step_runs.c.pipeline_run_id == run_id)
                .order_by(t.step_runs.c.position)
            ).all()
        return _pipeline_run(row, tuple(_step(s) for s in steps))

    def list_pipeline_runs(self, pipeline: str | None, limit: int) -> list[PipelineRunRecord]:
        """Newest first."""
        query = select(t.pipeline_runs).order_by(desc(t.pipeline_runs.c.started_at)).limit(limit)
        if pipeline:
            query = query.where(t.pipeline_runs.c.pipeline == pipeline)
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        return [_pipeline_run(r) for r in rows]

    def step_counts(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """Steps per status of each pipeline run, counted in SQL."""
        s = t.step_runs.c
        found: dict[str, dict[str, int]] = {r: {} for r in run_ids}
        if not run_ids:
            return found
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(s.pipeline_run_id, s.status, func.count())
                .where(s.pipeline_run_id.in_(run_ids))
                .group_by(s.pipeline_run_id, s.status)
            ).all()
        for row in rows:
            found[str(row[0])][str(row[1])] = int(row[2])
        return found

    def list_pipelines(self) -> list[tuple[str, int, int]]:
        """(name, runs, last started)."""
        p = t.pipeline_runs.c
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(p.pipeline, func.count(), func.max(p.started_at))
                .group_by(p.pipeline)
                .order_by(p.pipeline)
            ).all()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def get_cache(self, key: str) -> tuple[OutputRecord, ...] | None:
        """Cached outputs for a key."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(t.step_cache.c.outputs).where(t.step_cache.c.cache_key == key)
            ).first()
        return _outputs(row.outputs) if row is not None else None

    def cache_entry(self, key: str) -> tuple[str, str, tuple[OutputRecord, ...]] | None:
        """A cache entry with where it came from: (step, step run id, outputs)."""
        c = t.step_cache.c
        with reading(self.engine) as conn:
            row = conn.execute(
                select(c.step, c.step_run_id, c.outputs).where(c.cache_key == key)
            ).first()
        return (row.step, row.step_run_id, _outputs(row.outputs)) if row is not None else None

    def step_run_pipeline(self, step_run_id: str) -> str:
        """The pipeline run a step run belongs to."""
        with reading(self.engine) as conn:
            found = conn.execute(
                select(t.step_runs.c.pipeline_run_id).where(t.step_runs.c.id == step_run_id)
            ).scalar()
        if found is None:
            raise NotFoundError(f"no step run {step_run_id}", step_run_id=step_run_id)
        return str(found)

    def put_cache(
        self, key: str, step: str, step_run_id: str, outputs: tuple[OutputRecord, ...]
    ) -> None:
        """Remember outputs under a key."""
        with writing(self.engine) as conn:
            self._put_cache(conn, key, step, step_run_id, outputs)

    def _put_cache(
        self,
        conn: Connection,
        key: str,
        step: str,
        step_run_id: str,
        outputs: tuple[OutputRecord, ...],
    ) -> None:
        values = {
            "cache_key": key,
            "step": step,
            "step_run_id": step_run_id,
            "outputs": _outputs_json(outputs),
            "created_at": now_ms(),
        }
        stmt = upsert(conn, t.step_cache).values(values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["cache_key"],
                set_={k: stmt.excluded[k] for k in values if k != "cache_key"},
            )
        )

    def drop_cache(self, key: str) -> None:
        """Forget a cache entry."""
        with writing(self.engine) as conn:
            conn.execute(delete(t.step_cache).where(t.step_cache.c.cache_key == key))

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Append lineage edges."""
        if not edges:
            return
        now = now_ms()
        with writing(self.engine) as conn:
            conn.execute(
                t.lineage_edges.insert(),
                [{"source": s, "target": d, "relation": r, "created_at": now} for s, d, r in edges],
            )

    def record_lineage_event(
        self, event: dict[str, Any], edges: list[tuple[str, str, str]]
    ) -> None:
        """Keep a received OpenLineage event and the edges it implies, in one transaction."""
        now = now_ms()
        with writing(self.engine) as conn:
            # JobEvents have no run and DatasetEvents no job: their fields stay empty.
            job = event.get("job") or event.get("dataset") or {}
            kind = "JOB" if "run" not in event and "job" in event else "DATASET"
            conn.execute(
                t.openlineage_events.insert().values(
                    run_id=str((event.get("run") or {}).get("runId", "")),
                    event_type=str(event.get("eventType", "OTHER") if "run" in event else kind),
                    job_namespace=str(job.get("namespace", ""))[:500],
                    job_name=str(job.get("name", ""))[:500],
                    event_time=str(event["eventTime"])[:64],
                    body=json.dumps(event, ensure_ascii=False),
                    received_at=now,
                )
            )
            if edges:
                conn.execute(
                    t.lineage_edges.insert(),
                    [
                        {"source": a, "target": b, "relation": r, "created_at": now}
                        for a, b, r in edges
                    ],
                )

    def edges_touching(self, nodes: list[str]) -> list[tuple[str, str, str]]:
        """Edges into or out of any of ``nodes``."""
        if not nodes:
            return []
        e = t.lineage_edges.c
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(e.source, e.target, e.relation)
                .where(or_(e.source.in_(nodes), e.target.in_(nodes)))
                .order_by(e.id)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]
