"""SQL stores for monitoring: labels and monitor results."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from shipyard.monitoring.alerts import Alert
from shipyard.monitoring.models import Label
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing


class SqlFeedbackStore:
    """Labels keyed by (deployment, request id, row); a second label for a row is refused."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_labels(self, deployment: str, labels: list[Label]) -> list[Label]:
        """Insert the new labels in one transaction; return those already stored."""
        with writing(self.engine) as conn:
            existing: set[tuple[str, int]] = set()
            ids = sorted({label.request_id for label in labels})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    select(t.feedback.c.request_id, t.feedback.c.row).where(
                        t.feedback.c.deployment == deployment, t.feedback.c.request_id.in_(chunk)
                    )
                )
                existing.update((r.request_id, int(r.row)) for r in rows)
            new = [lb for lb in labels if (lb.request_id, lb.row) not in existing]
            if new:
                conn.execute(
                    insert(t.feedback),
                    [
                        {
                            "deployment": deployment,
                            "request_id": lb.request_id,
                            "row": lb.row,
                            "label": json.dumps(lb.label),
                            "received_at": lb.received_at,
                            "actor": lb.actor,
                        }
                        for lb in new
                    ],
                )
        return [lb for lb in labels if (lb.request_id, lb.row) in existing]

    def labels(self, deployment: str, request_ids: list[str] | None = None) -> list[Label]:
        """Stored labels of a deployment."""
        query = select(t.feedback).where(t.feedback.c.deployment == deployment)
        if request_ids is not None:
            query = query.where(t.feedback.c.request_id.in_(request_ids))
        with reading(self.engine) as conn:
            return [
                Label(r.request_id, json.loads(r.label), int(r.row), int(r.received_at), r.actor)
                for r in conn.execute(query)
            ]


class SqlMonitorResultStore:
    """One result per monitor and window; evaluating a window again replaces it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self,
        monitor: str,
        start: int,
        end: int,
        status: str,
        rows: int,
        result: dict[str, Any],
        evaluated_at: int,
    ) -> None:
        """Upsert by (monitor, window): re-running a window is idempotent."""
        with writing(self.engine) as conn:
            key = (
                (t.monitor_results.c.monitor == monitor)
                & (t.monitor_results.c.window_start == start)
                & (t.monitor_results.c.window_end == end)
            )
            conn.execute(delete(t.monitor_results).where(key))
            conn.execute(
                insert(t.monitor_results).values(
                    monitor=monitor,
                    window_start=start,
                    window_end=end,
                    status=status,
                    rows=rows,
                    result=json.dumps(result, allow_nan=False),
                    evaluated_at=evaluated_at,
                )
            )

    def history(
        self, monitor: str, limit: int | None = None, *, judged: bool = False
    ) -> list[dict[str, Any]]:
        """Results, oldest window first: the newest ``limit`` of them, and with ``judged``
        only windows that had traffic."""
        res = t.monitor_results
        query = select(res.c.result).where(res.c.monitor == monitor)
        if judged:
            query = query.where(res.c.status != "no_data")
        if limit is None:
            query = query.order_by(res.c.window_start)
        else:
            query = query.order_by(res.c.window_start.desc()).limit(limit)
        with reading(self.engine) as conn:
            found = [json.loads(str(body)) for (body,) in conn.execute(query)]
        return found if limit is None else found[::-1]

    def latest(self) -> list[dict[str, Any]]:
        """The newest window's result of every monitor."""
        return _latest(self.engine)


class SqlAlertStore:
    """Alerts with their delivery record; kept after they resolve."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_alert(self, monitor: str, rule: str) -> Alert | None:
        """The firing alert of a rule."""
        query = select(t.alerts.c.body).where(
            t.alerts.c.monitor == monitor, t.alerts.c.rule == rule, t.alerts.c.status == "firing"
        )
        with reading(self.engine) as conn:
            body = conn.execute(query).scalar()
        return Alert(**json.loads(str(body))) if body is not None else None

    def save(self, alert: Alert) -> None:
        """Insert or replace an alert."""
        with writing(self.engine) as conn:
            conn.execute(delete(t.alerts).where(t.alerts.c.id == alert.id))
            conn.execute(
                insert(t.alerts).values(
                    id=alert.id,
                    monitor=alert.monitor,
                    rule=alert.rule,
                    status=alert.status,
                    opened_at=alert.opened_at,
                    body=json.dumps(asdict(alert)),
                )
            )

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first."""
        query = select(t.alerts.c.body).order_by(t.alerts.c.opened_at.desc(), t.alerts.c.id.desc())
        if monitor is not None:
            query = query.where(t.alerts.c.monitor == monitor)
        if status is not None:
            query = query.where(t.alerts.c.status == status)
        with reading(self.engine) as conn:
            return [Alert(**json.loads(str(b))) for (b,) in conn.execute(query)]


def _latest(engine: Engine) -> list[dict[str, Any]]:
    from sqlalchemy import func

    newest = (
        select(t.monitor_results.c.monitor, func.max(t.monitor_results.c.window_start).label("w"))
        .group_by(t.monitor_results.c.monitor)
        .subquery()
    )
    query = select(t.monitor_results.c.result).join(
        newest,
        (t.monitor_results.c.monitor == newest.c.monitor)
        & (t.monitor_results.c.window_start == newest.c.w),
    )
    with reading(engine) as conn:
        return [json.loads(str(r)) for (r,) in conn.execute(query)]
