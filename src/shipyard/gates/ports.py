"""The port gates need from a metadata store: keep reports per model version."""

from __future__ import annotations

from typing import Protocol

from shipyard.gates.report import GateReport


class GateReportStore(Protocol):
    """Gate reports, append-only."""

    def add_report(self, report: GateReport) -> GateReport:
        """Store a report; return it as stored (a server stamps who submitted it)."""
        ...

    def list_reports(self, model: str, version: int | None = None) -> list[GateReport]:
        """Reports of a model (or one version), newest first."""
        ...

    def get_report(self, report_id: str) -> GateReport:
        """One report; NotFoundError if unknown."""
        ...
