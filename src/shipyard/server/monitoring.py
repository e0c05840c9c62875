"""Monitors and alerts through the server (team mode).

A monitor is evaluated here, where the prediction log and the labels are; a client sends
the monitor's declaration and the window. The rules kept here:

- a reference file is sent as a blob (``blob:<sha256>``), never named as a path on this
  machine, so a caller cannot make the server read its own files;
- notifications go through this server's webhook allow list and destination guard;
- this server never imports a retraining pipeline a declaration names: the client that ran
  the monitor starts it (its code is there) and reports the run, which must be its own.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.service import MonitorService
from shipyard.monitoring.spec import BLOB, MonitorSpec, parse_monitor
from shipyard.server.jsonbody import JsonRoute
from shipyard.server.pipelines import pipeline_run_owned
from shipyard.wire.schemas import (
    AlertList,
    AlertRedeliver,
    AlertWire,
    MonitorResults,
    MonitorRunCreate,
    RetrainingLink,
)

router = APIRouter(prefix="/api/v1", tags=["monitoring"], route_class=JsonRoute)


def _service(request: Request) -> MonitorService:
    service: MonitorService = request.app.state.backend.monitors
    # One shared service keeps the prepared references; a copy never retrains here, whatever
    # a pipeline running in this process set on the shared one.
    here = copy.copy(service)
    here.retrain = None
    return here


def _spec(data: dict[str, Any]) -> MonitorSpec:
    spec = parse_monitor(data)
    ref = spec.reference
    if ref.kind == "file" and not (ref.path or "").startswith(BLOB):
        raise InvalidInputError(
            "through a server, a reference file is uploaded first and named blob:<sha256> "
            "(the client does this); a path on the server is never read"
        )
    return spec


def _utc(moment: datetime | None, what: str) -> datetime:
    if moment is None:
        raise InvalidInputError(f"the window needs {what}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.post("/monitors/{name}/runs", status_code=201)
async def run_monitor(name: str, body: MonitorRunCreate, request: Request) -> dict[str, Any]:
    """Evaluate one window of a monitor and store its result; alerts fire and notify here."""
    spec = _spec(body.spec)
    if spec.name != name:
        raise InvalidInputError(f"the declaration is of monitor {spec.name!r}, not {name!r}")
    service = _service(request)
    if spec.window.rows is not None:
        until = _utc(body.until, "until (the monitor's window counts rows)")
        return await run_in_threadpool(service.run_latest, spec, until)
    start, end = _utc(body.start, "start"), _utc(body.end, "end")
    return await run_in_threadpool(service.run, spec, start, end)


@router.get("/monitors")
def latest_results(request: Request) -> MonitorResults:
    """The newest window's result of every monitor."""
    return MonitorResults(results=_service(request).latest())


@router.get("/monitors/{name}/results")
def monitor_history(
    name: str,
    request: Request,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> MonitorResults:
    """A monitor's stored results, oldest window first."""
    return MonitorResults(monitor=name, results=_service(request).history(name, limit))


@router.get("/alerts")
def list_alerts(
    request: Request,
    monitor: Annotated[str | None, Query(max_length=250)] = None,
    status: Annotated[str | None, Query(pattern="^(firing|resolved)$")] = None,
) -> AlertList:
    """Alerts, newest first, with how their notifications went."""
    found = _service(request).list_alerts(monitor, status)
    return AlertList(alerts=[AlertWire.of(a) for a in found])


@router.post("/alerts/{alert_id}/redeliver")
async def redeliver(alert_id: str, body: AlertRedeliver, request: Request) -> AlertWire:
    """Send an alert's undelivered notifications again, through the monitor's notifiers."""
    spec = _spec(body.spec)
    alert = await run_in_threadpool(_service(request).redeliver, alert_id, spec)
    return AlertWire.of(alert)


@router.post("/alerts/{alert_id}/retraining")
def link_retraining(alert_id: str, body: RetrainingLink, request: Request) -> AlertWire:
    """Record the retraining pipeline run the caller started for a firing alert."""
    pipeline_run_owned(request, body.pipeline_run)
    alert = _service(request).link_retraining(alert_id, body.pipeline, body.pipeline_run)
    return AlertWire.of(alert)
