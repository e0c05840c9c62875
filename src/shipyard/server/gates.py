"""Routes for gate reports: stored on a model version, listed per model."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from shipyard.core.errors import InvalidInputError
from shipyard.core.jsonsafe import INT64_MAX
from shipyard.gates.report import GateReport
from shipyard.gates.service import GateService
from shipyard.server.auth import Actor, current_actor
from shipyard.server.jsonbody import JsonRoute
from shipyard.wire.schemas import ArtifactRef, GateCheckCreate, GateReportList, GateReportWire

if TYPE_CHECKING:
    import pandas as pd

router = APIRouter(prefix="/api/v1", tags=["gates"], route_class=JsonRoute)


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
    creator = actor.name if actor.authenticated else report.created_by
    # The client's word is kept for the record, never as a report promotion counts.
    report = dataclasses.replace(report, created_by=creator, verified=False)
    return svc.save(report).to_dict()


@router.post("/models/{name}/versions/{version}/gate-checks", status_code=201)
def run_gate_check(
    name: str,
    version: str,
    body: GateCheckCreate,
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
) -> dict[str, Any]:
    """Evaluate the version here, on data the caller stored as run artifacts.

    The server loads the version from its own files and computes every check, so the
    report it stores is verified: approvals count only such reports.
    """
    svc = _svc(request)
    data = _frame(svc, body.data)
    reference = _frame(svc, body.reference) if body.reference is not None else None
    report = svc.evaluate(name, version, body.policy, data, reference=reference, actor=actor.name)
    return report.to_dict()


def _frame(svc: GateService, ref: ArtifactRef) -> pd.DataFrame:
    """A Parquet artifact read as a frame (the evaluation or the reference data)."""
    import pandas as pd
    import pyarrow

    tracking = svc.registry.tracking
    with tempfile.TemporaryDirectory(prefix="shipyard-gate-") as tmp:
        path = tracking.download_artifact(ref.run_id, ref.artifact, Path(tmp) / "data.parquet")
        try:
            return pd.read_parquet(path)
        except (pyarrow.ArrowException, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"runs:/{ref.run_id}/{ref.artifact} is not a readable Parquet file: {exc}"
            ) from None


@router.get("/models/{name}/gate-reports")
def list_reports(
    name: str, request: Request, version: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None
) -> GateReportList:
    """Reports of a model (or one version), newest first."""
    found = _svc(request).reports(name, version)
    return GateReportList(reports=[r.to_dict() for r in found])


@router.get("/gate-reports/{report_id}")
def get_report(report_id: str, request: Request) -> dict[str, Any]:
    """One report."""
    return _svc(request).store.get_report(report_id).to_dict()
