"""Edge through the server: devices check in, fetch their bundle and upload telemetry;
people list bundles and devices and steer rollouts.

A device's token is a member's (it writes telemetry); moving a device group to a bundle is
a production change, so rollouts need an approver, like moving the champion alias.
Telemetry may arrive gzip-compressed; it is inflated only up to the server's JSON limit.
"""

from __future__ import annotations

import zlib
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from shipyard.core.errors import InvalidInputError
from shipyard.core.jsonsafe import parse_json
from shipyard.edge.service import EdgeService
from shipyard.server.jsonbody import JsonRoute
from shipyard_edge.bundle import BundleError, load_public_keys

router = APIRouter(prefix="/api/v1/edge", tags=["edge"], route_class=JsonRoute)


class CheckIn(BaseModel):
    """What a device says when it reports in."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(max_length=64)
    bundle: str | None = Field(default=None, max_length=160)


class BundleKeep(BaseModel):
    """A signed bundle uploaded as a blob, the signer's public key and the export report."""

    model_config = ConfigDict(extra="forbid")

    blob: str = Field(pattern=r"^[0-9a-f]{64}$")
    public_key: str = Field(max_length=4000)
    report: dict[str, Any]


class RolloutCreate(BaseModel):
    """Move a share of a device group to a bundle."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(max_length=64)
    bundle: str = Field(max_length=160)
    percent: int = Field(ge=0, le=100)


class RolloutChange(BaseModel):
    """A new share for a group's active rollout."""

    model_config = ConfigDict(extra="forbid")

    percent: int = Field(ge=0, le=100)


class Rollback(BaseModel):
    """Why a rollout is rolled back."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


def _edge(request: Request) -> EdgeService:
    service: EdgeService = request.app.state.backend.service("edge")
    return service


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"the gzip body is corrupt: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InvalidInputError(f"the telemetry batch inflates past {limit} bytes")
    return out


@router.post("/telemetry")
async def upload_telemetry(request: Request) -> dict[str, Any]:
    """Take a device's telemetry batch into the prediction log (``edge-<group>``)."""
    body = await request.body()
    limit = request.app.state.settings.max_request_bytes
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = _inflate(body, limit)
    payload = parse_json(body, "the telemetry batch")
    if not isinstance(payload, dict):
        raise InvalidInputError("a telemetry batch is a JSON object")
    return await run_in_threadpool(_edge(request).ingest, payload)


@router.post("/devices/{device}/checkin")
def checkin(device: str, body: CheckIn, request: Request) -> dict[str, Any]:
    """Record the bundle a device runs; answer the bundle it should run."""
    return _edge(request).checkin(device, body.group, body.bundle)


@router.get("/devices")
def devices(request: Request, group: str | None = Query(None)) -> list[dict[str, Any]]:
    """Devices and what each last reported."""
    return [d.__dict__ for d in _edge(request).devices(group)]


@router.get("/bundles")
def bundles(request: Request, model: str | None = Query(None)) -> list[dict[str, Any]]:
    """Bundles the platform keeps, newest first."""
    return [b.summary() for b in _edge(request).bundles(model)]


@router.post("/bundles", status_code=201)
def keep_bundle(body: BundleKeep, request: Request) -> dict[str, Any]:
    """Keep a bundle a client measured and signed: its signature must verify with the key
    sent, its files match the manifest and its source version exist here."""
    try:
        trusted = load_public_keys({"signer": body.public_key.encode()})
    except BundleError as exc:
        raise InvalidInputError(f"public_key: {exc}") from None
    blobs = request.app.state.backend.blobs
    data = b"".join(blobs.read_chunks(body.blob))
    return _edge(request).keep(data, body.report, trusted).summary()


@router.get("/bundles/{bundle_id}")
def bundle_file(bundle_id: str, request: Request) -> Response:
    """The signed bundle file (devices verify it before using it)."""
    data = _edge(request).bundle_bytes(bundle_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{bundle_id}.zip"'},
    )


@router.get("/bundles/{bundle_id}/report")
def bundle_report(bundle_id: str, request: Request) -> dict[str, Any]:
    """The export report the bundle was chosen by."""
    return _edge(request).get_bundle(bundle_id).report


@router.get("/rollouts")
def rollouts(request: Request, group: str | None = Query(None)) -> list[dict[str, Any]]:
    """Rollouts, newest first."""
    return [r.__dict__ for r in _edge(request).rollouts(group)]


@router.post("/rollouts", status_code=201)
def start_rollout(body: RolloutCreate, request: Request) -> dict[str, Any]:
    """Move ``percent`` of a device group to a bundle."""
    return _edge(request).start_rollout(body.group, body.bundle, body.percent).__dict__


@router.put("/rollouts/{group}")
def set_percent(group: str, body: RolloutChange, request: Request) -> dict[str, Any]:
    """Change the share of a group's active rollout."""
    return _edge(request).set_percent(group, body.percent).__dict__


@router.post("/rollouts/{group}/rollback")
def rollback(group: str, body: Rollback, request: Request) -> dict[str, Any]:
    """Send every device of the group back to the bundle it ran before."""
    return _edge(request).rollback(group, body.reason).__dict__
