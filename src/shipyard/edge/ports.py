"""What the edge capability needs stored: bundles, rollouts and the devices' reports."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

#: Rollout states: moving devices, rolled back to the previous bundle, or replaced by a newer
#: rollout of the same group.
ACTIVE, ROLLED_BACK, SUPERSEDED = "active", "rolled_back", "superseded"


@dataclass(frozen=True)
class BundleRecord:
    """A signed bundle the platform keeps for devices to fetch."""

    id: str
    model: str
    version: int
    target: str
    variant: str
    sha256: str
    size_bytes: int
    key_id: str
    blob_key: str
    report: dict[str, Any]
    created_at: int
    created_by: str

    def summary(self) -> dict[str, Any]:
        """The record without its report."""
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "uri": f"models:/{self.model}/{self.version}",
            "target": self.target,
            "variant": self.variant,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Rollout:
    """A share (``percent``) of a device group moved from one bundle to another."""

    id: str
    group: str
    bundle_id: str
    previous_bundle_id: str | None
    percent: int
    status: str
    created_at: int
    created_by: str
    updated_at: int


@dataclass(frozen=True)
class Device:
    """What a device last said: its group, the bundle it runs, the telemetry it sent."""

    device: str
    group: str
    bundle_id: str | None
    last_seen: int
    telemetry_seq: int
    telemetry_rows: int
    dropped_rows: int


class EdgeStore(Protocol):
    """Bundles, rollouts and devices, in the store's database."""

    def add_bundle(self, record: BundleRecord) -> None:
        """Keep a bundle's record (ConflictError if its id exists)."""
        ...

    def get_bundle(self, bundle_id: str) -> BundleRecord:
        """A bundle's record; NotFoundError if unknown."""
        ...

    def list_bundles(self, model: str | None = None) -> list[BundleRecord]:
        """Bundles, newest first."""
        ...

    def add_rollout(self, rollout: Rollout) -> None:
        """Start a rollout, marking the group's active one superseded, in one transaction."""
        ...

    def set_rollout(self, rollout_id: str, *, percent: int, status: str, at: int) -> Rollout:
        """Change a rollout's share or status; NotFoundError if unknown."""
        ...

    def rollouts(self, group: str | None = None) -> list[Rollout]:
        """Rollouts, newest first."""
        ...

    def report(self, device: str, group: str, bundle_id: str | None, at: int) -> Device | None:
        """Record a device's check-in; the device as it was before (None if new)."""
        ...

    def accept_telemetry(
        self, device: str, group: str, last_seq: int, rows: int, dropped: int, at: int
    ) -> bool:
        """Advance a device's telemetry position to ``last_seq``; False when the batch was
        already taken (``last_seq`` not past the stored one)."""
        ...

    def devices(self, group: str | None = None) -> list[Device]:
        """Devices by name."""
        ...


class AuditLog(Protocol):
    """The audit trail, as edge records its decisions."""

    def atomic(self) -> AbstractContextManager[Any]:
        """A unit of work: a change and its events commit together."""
        ...

    def record(self, action: str, obj: str, payload: dict[str, Any] | None = None) -> None:
        """Record an event for the current actor."""
        ...


class LineageEdges(Protocol):
    """Where lineage edges (source, target, relation) are written."""

    def add_edges(self, edges: list[tuple[str, str, str]]) -> None:
        """Record edges."""
        ...


class EdgeOperations(Protocol):
    """What surfaces ask of edge, served in this process or by a Shipyard server."""

    def export(
        self,
        uri: str,
        target: Any,
        data: Any,
        label: str,
        signing_key: Any,
        *,
        dest: Any = None,
        progress: Any = None,
    ) -> tuple[Any, BundleRecord | None]:
        """Measure, choose, sign and keep a bundle (the report, and the record or None)."""
        ...

    def bundles(self, model: str | None = None) -> list[BundleRecord]:
        """Kept bundles, newest first."""
        ...

    def get_bundle(self, bundle_id: str) -> BundleRecord:
        """One bundle's record, with its export report."""
        ...

    def bundle_bytes(self, bundle_id: str) -> bytes:
        """The signed bundle file."""
        ...

    def start_rollout(self, group: str, bundle_id: str, percent: int) -> Rollout:
        """Move a share of a device group to a bundle."""
        ...

    def set_percent(self, group: str, percent: int) -> Rollout:
        """Change the share of a group's active rollout."""
        ...

    def rollback(self, group: str, reason: str | None = None) -> Rollout:
        """Send every device of the group back to the bundle it ran before."""
        ...

    def rollouts(self, group: str | None = None) -> list[Rollout]:
        """Rollouts, newest first."""
        ...

    def devices(self, group: str | None = None) -> list[Device]:
        """Devices and what each last reported."""
        ...
