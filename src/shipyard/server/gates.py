"""Routes for gate reports: stored on a model version, listed per model."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from shipyard.core.errors import InvalidInputError
from shipyard.gates.report import GateReport
from shipyard.gates.service import GateService
from shipyard.remote.schemas import GateReportList, GateReportWire
from shipyard.server.auth import Actor, current_actor

router = APIRouter(prefix="/api/v1", tags=["gates"])


def _svc(request: Request) -> GateService:
    return request.app.state.backend.gates  # type: ignore[no-any-return]


@router.post("/models/{name}/versions/{version}/gate-reports", status_code=201)
def add_report(
    name: str,
    version: str,
    body: GateReportWire,
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
) -> dict[str, Any]:
    """Store a report evaluated by a client (CI) for this version."""
    svc = _svc(request)
    mv = svc.registry.get_version(name, version)
    try:
        report = GateReport.from_dict(body.model_dump())
    except (TypeError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"not a gate report: {exc}") from None
    if (report.model, report.version) != (mv.name, mv.version):
        raise InvalidInputError(
            f"the report is for {report.model} v{report.version}, not {mv.name} v{mv.version}"
        )
    if actor.authenticated:
        report = dataclasses.replace(report, created_by=actor.name)
    return svc.save(report).to_dict()


@router.get("/models/{name}/gate-reports")
def list_reports(name: str, request: Request, version: int | None = None) -> GateReportList:
    """Reports of a model (or one version), newest first."""
    found = _svc(request).reports(name, version)
    return GateReportList(reports=[r.to_dict() for r in found])


@router.get("/gate-reports/{report_id}")
def get_report(report_id: str, request: Request) -> dict[str, Any]:
    """One report."""
    return _svc(request).store.get_report(report_id).to_dict()
