"""SqlGateStore: the GateReportStore port on SQLAlchemy Core."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, select

from shipyard.core.errors import NotFoundError
from shipyard.gates.report import GateReport
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing


class SqlGateStore:
    """Gate reports in SQLite or PostgreSQL (append-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_report(self, report: GateReport) -> GateReport:
        """Insert a report."""
        with writing(self.engine) as conn:
            conn.execute(
                insert(t.gate_reports).values(
                    id=report.id,
                    model=report.model,
                    version=report.version,
                    passed=report.passed,
                    policy_digest=report.policy_digest,
                    data_digest=report.data_digest,
                    report=json.dumps(report.to_dict(), allow_nan=True),
                    created_by=report.created_by,
                    created_at=report.created_at,
                )
            )
        return report

    def list_reports(self, model: str, version: int | None = None) -> list[GateReport]:
        """Reports of a model or one version, newest first."""
        query = select(t.gate_reports.c.report).where(t.gate_reports.c.model == model)
        if version is not None:
            query = query.where(t.gate_reports.c.version == version)
        query = query.order_by(t.gate_reports.c.created_at.desc(), t.gate_reports.c.id.desc())
        with reading(self.engine) as conn:
            return [GateReport.from_dict(json.loads(str(r))) for (r,) in conn.execute(query)]

    def get_report(self, report_id: str) -> GateReport:
        """One report by id."""
        with reading(self.engine) as conn:
            text = conn.execute(
                select(t.gate_reports.c.report).where(t.gate_reports.c.id == report_id)
            ).scalar()
        if text is None:
            raise NotFoundError(f"gate report {report_id} does not exist", report=report_id)
        return GateReport.from_dict(json.loads(text))
