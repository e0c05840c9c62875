"""RestGateStore: gate reports kept by a Shipyard server."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shipyard.gates.policy import GatePolicy, parse_policy
from shipyard.gates.ports import newest_report
from shipyard.gates.report import GateReport
from shipyard.registry.ports import ModelRegistry
from shipyard.remote.client import RestClient

if TYPE_CHECKING:
    import pandas as pd

#: The experiment holding the data of gate checks sent to a server.
GATE_EXPERIMENT = "gate-checks"


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


class RestGateService:
    """Gates through a server (the Gates protocol, by composition): the server evaluates,
    so its report is the verified one.

    The data travel as Parquet artifacts of a short run the caller owns ("gate-checks"
    experiment); the server loads the version from its own files and computes every check.
    """

    def __init__(self, registry: ModelRegistry, client: RestClient) -> None:
        self.registry = registry
        self.store = RestGateStore(client)
        self.client = client

    def reports(self, name: str, version: int | None = None) -> list[GateReport]:
        """Stored reports, newest first."""
        self.registry.get_model(name)
        return self.store.list_reports(name, version)

    def latest(self, name: str, version: int, *, verified: bool = False) -> GateReport:
        """The newest report of one version (``verified``: one the server computed)."""
        return newest_report(
            self.store.list_reports(name, version), name, version, verified=verified
        )

    def evaluate(
        self,
        name: str,
        version: int | str,
        policy: GatePolicy | dict[str, Any],
        data: pd.DataFrame,
        *,
        reference: pd.DataFrame | None = None,
        actor: str | None = None,
        trusted: bool = False,
    ) -> GateReport:
        """Upload the data, have the server evaluate the version, return its report."""
        rules = parse_policy(policy)
        mv = self.registry.get_version(name, version)
        tracking = self.registry.tracking
        run = tracking.create_run(GATE_EXPERIMENT, name=f"gate-{mv.name}-v{mv.version}")
        refs: dict[str, dict[str, str]] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="shipyard-gate-") as tmp:
                for key, frame in (("data", data), ("reference", reference)):
                    if frame is None:
                        continue
                    path = Path(tmp) / f"{key}.parquet"
                    frame.to_parquet(path, index=False)
                    tracking.log_artifact(run.id, path, f"gates/{key}.parquet")
                    refs[key] = {"run_id": run.id, "artifact": f"gates/{key}.parquet"}
            body = {"policy": rules.model_dump(mode="json", by_alias=True), **refs}
            result = self.client.json(
                "POST",
                f"/api/v1/models/{quote(mv.name, safe='')}/versions/{mv.version}/gate-checks",
                idempotent=False,
                content=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        except BaseException:
            tracking.end_run(run.id, "FAILED")
            raise
        tracking.end_run(run.id, "FINISHED")
        return GateReport.from_dict(result)
