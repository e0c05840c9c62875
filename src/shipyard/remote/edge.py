"""Edge through a Shipyard server: the export is measured and signed here (where the data and
the signing key are), the bundle goes up as a blob and the server keeps it after checking its
signature; rollouts, bundles and devices are the server's."""

from __future__ import annotations

import json
from typing import Any

from shipyard.core.blobs import BlobStore
from shipyard.edge.ports import BundleRecord, Device, Rollout
from shipyard.edge.service import BundleExport
from shipyard.registry.ports import ModelRegistry
from shipyard.remote.client import RestClient, seg

_JSON = {"Content-Type": "application/json"}


def _bundle(data: dict[str, Any]) -> BundleRecord:
    return BundleRecord(
        id=data["id"],
        model=data["model"],
        version=int(data["version"]),
        target=data["target"],
        variant=data["variant"],
        sha256=data["sha256"],
        size_bytes=int(data["size_bytes"]),
        key_id=data["key_id"],
        blob_key=data.get("blob_key", ""),
        report=data.get("report") or {},
        created_at=int(data["created_at"]),
        created_by=data["created_by"],
    )


class RestEdge(BundleExport):
    """The edge service's operations over ``/api/v1/edge``."""

    def __init__(self, client: RestClient, registry: ModelRegistry, blobs: BlobStore) -> None:
        self.client = client
        self.registry = registry
        self.blobs = blobs

    def keep_signed(self, data: bytes, report: dict[str, Any], public_key: str) -> BundleRecord:
        """Upload the bundle as a blob; the server verifies its signature and keeps it."""
        ref = self.blobs.put_chunks([data])
        body = {"blob": ref.digest, "public_key": public_key, "report": report}
        return _bundle(
            self.client.json(
                "POST",
                "/api/v1/edge/bundles",
                idempotent=False,
                content=json.dumps(body, default=str),
                headers=_JSON,
            )
        )

    def bundle_bytes(self, bundle_id: str) -> bytes:
        """The signed bundle file."""
        return self.client.content("GET", f"/api/v1/edge/bundles/{seg(bundle_id)}")

    def bundles(self, model: str | None = None) -> list[BundleRecord]:
        """Bundles the server keeps, newest first."""
        params = {"model": model} if model else None
        found = self.client.json("GET", "/api/v1/edge/bundles", params=params)
        return [_bundle(b) for b in found]

    def get_bundle(self, bundle_id: str) -> BundleRecord:
        """One bundle's record, with its export report."""
        summary = next((b for b in self.bundles() if b.id == bundle_id), None)
        report = self.client.json("GET", f"/api/v1/edge/bundles/{seg(bundle_id)}/report")
        if summary is None:  # pragma: no cover - the report call raised NotFound first
            raise LookupError(bundle_id)
        return BundleRecord(**{**summary.__dict__, "report": report})

    def start_rollout(self, group: str, bundle_id: str, percent: int) -> Rollout:
        """Move a share of a device group to a bundle (an approver's change)."""
        body = {"group": group, "bundle": bundle_id, "percent": percent}
        return Rollout(
            **self.client.json("POST", "/api/v1/edge/rollouts", idempotent=False, json=body)
        )

    def set_percent(self, group: str, percent: int) -> Rollout:
        """Change the share of a group's active rollout."""
        return Rollout(
            **self.client.json(
                "PUT", f"/api/v1/edge/rollouts/{seg(group)}", json={"percent": percent}
            )
        )

    def rollback(self, group: str, reason: str | None = None) -> Rollout:
        """Send every device of the group back to the bundle it ran before."""
        return Rollout(
            **self.client.json(
                "POST",
                f"/api/v1/edge/rollouts/{seg(group)}/rollback",
                idempotent=False,
                json={"reason": reason},
            )
        )

    def rollouts(self, group: str | None = None) -> list[Rollout]:
        """Rollouts, newest first."""
        params = {"group": group} if group else None
        return [
            Rollout(**r) for r in self.client.json("GET", "/api/v1/edge/rollouts", params=params)
        ]

    def devices(self, group: str | None = None) -> list[Device]:
        """Devices and what each last reported."""
        params = {"group": group} if group else None
        return [Device(**d) for d in self.client.json("GET", "/api/v1/edge/devices", params=params)]

    def close(self) -> None:
        """Nothing held open here."""
