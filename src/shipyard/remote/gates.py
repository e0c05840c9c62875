"""RestGateStore: gate reports kept by a Shipyard server."""

from __future__ import annotations

import json
from urllib.parse import quote

from shipyard.gates.report import GateReport
from shipyard.remote.client import RestClient


class RestGateStore:
    """GateReportStore over HTTP (the report is evaluated where the data is)."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def add_report(self, report: GateReport) -> GateReport:
        """POST /api/v1/models/{name}/versions/{version}/gate-reports."""
        path = f"/api/v1/models/{quote(report.model, safe='')}/versions/{report.version}"
        data = self.client.json(
            "POST",
            f"{path}/gate-reports",
            idempotent=False,
            content=json.dumps(report.to_dict()),
            headers={"Content-Type": "application/json"},
        )
        return GateReport.from_dict(data)

    def list_reports(self, model: str, version: int | None = None) -> list[GateReport]:
        """GET /api/v1/models/{name}/gate-reports[?version=N]."""
        params = {"version": str(version)} if version is not None else {}
        data = self.client.json(
            "GET", f"/api/v1/models/{quote(model, safe='')}/gate-reports", params=params
        )
        return [GateReport.from_dict(r) for r in data["reports"]]

    def get_report(self, report_id: str) -> GateReport:
        """GET /api/v1/gate-reports/{id}."""
        data = self.client.json("GET", f"/api/v1/gate-reports/{quote(report_id, safe='')}")
        return GateReport.from_dict(data)
