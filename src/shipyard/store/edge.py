"""SQL store for edge: bundles, rollouts and devices."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, insert, select, update

from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.edge.ports import ACTIVE, SUPERSEDED, BundleRecord, Device, Rollout
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing


def _fields(row: Any) -> dict[str, Any]:
    """A row as a record's fields (``device_group`` is the records' ``group``)."""
    fields = dict(row._mapping)
    if "device_group" in fields:
        fields["group"] = fields.pop("device_group")
    return fields


def _bundle(row: Any) -> BundleRecord:
    fields = _fields(row)
    return BundleRecord(**{**fields, "report": json.loads(fields["report"])})


def _rollout(row: Any) -> Rollout:
    return Rollout(**_fields(row))


def _device(row: Any) -> Device:
    return Device(**_fields(row))


def _new_device(conn: Any, device: str, group: str, bundle_id: str | None, at: int) -> None:
    conn.execute(
        insert(t.edge_devices).values(
            device=device,
            device_group=group,
            bundle_id=bundle_id,
            last_seen=at,
            telemetry_seq=0,
            telemetry_rows=0,
            dropped_rows=0,
        )
    )


class SqlEdgeStore:
    """Edge records in the store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_bundle(self, record: BundleRecord) -> None:
        """Keep a bundle's record; ConflictError if its id exists."""
        b = t.edge_bundles
        with writing(self.engine) as conn:
            if conn.execute(select(b.c.id).where(b.c.id == record.id)).first() is not None:
                raise ConflictError(f"bundle {record.id} exists already", bundle=record.id)
            row = {**asdict(record), "report": json.dumps(record.report, default=str)}
            conn.execute(insert(b).values(**row))

    def get_bundle(self, bundle_id: str) -> BundleRecord:
        """A bundle's record; NotFoundError if unknown."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(t.edge_bundles).where(t.edge_bundles.c.id == bundle_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no edge bundle {bundle_id!r}", bundle=bundle_id)
        return _bundle(row)

    def list_bundles(self, model: str | None = None) -> list[BundleRecord]:
        """Bundles, newest first."""
        query = select(t.edge_bundles).order_by(t.edge_bundles.c.created_at.desc())
        if model is not None:
            query = query.where(t.edge_bundles.c.model == model)
        with reading(self.engine) as conn:
            return [_bundle(r) for r in conn.execute(query)]

    def add_rollout(self, rollout: Rollout) -> None:
        """Start a rollout; the group's active rollout (if any) is superseded with it."""
        r = t.edge_rollouts
        with writing(self.engine) as conn:
            conn.execute(
                update(r)
                .where(r.c.device_group == rollout.group, r.c.status == ACTIVE)
                .values(status=SUPERSEDED, updated_at=rollout.created_at)
            )
            row = asdict(rollout)
            row["device_group"] = row.pop("group")
            conn.execute(insert(r).values(**row))

    def set_rollout(self, rollout_id: str, *, percent: int, status: str, at: int) -> Rollout:
        """Change a rollout's share or status."""
        r = t.edge_rollouts
        with writing(self.engine) as conn:
            done = conn.execute(
                update(r)
                .where(r.c.id == rollout_id)
                .values(percent=percent, status=status, updated_at=at)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no rollout {rollout_id!r}", rollout=rollout_id)
            row = conn.execute(select(r).where(r.c.id == rollout_id)).one()
        return _rollout(row)

    def rollouts(self, group: str | None = None) -> list[Rollout]:
        """Rollouts, newest first."""
        r = t.edge_rollouts
        query = select(r).order_by(r.c.created_at.desc(), r.c.id.desc())
        if group is not None:
            query = query.where(r.c.device_group == group)
        with reading(self.engine) as conn:
            return [_rollout(row) for row in conn.execute(query)]

    def report(self, device: str, group: str, bundle_id: str | None, at: int) -> Device | None:
        """Record a check-in; return the device as it was before (None if new)."""
        d = t.edge_devices
        with writing(self.engine) as conn:
            row = conn.execute(select(d).where(d.c.device == device)).first()
            if row is None:
                _new_device(conn, device, group, bundle_id, at)
                return None
            conn.execute(
                update(d)
                .where(d.c.device == device)
                .values(device_group=group, bundle_id=bundle_id, last_seen=at)
            )
        return _device(row)

    def accept_telemetry(
        self, device: str, group: str, last_seq: int, rows: int, dropped: int, at: int
    ) -> bool:
        """Move the device's telemetry position forward; False if the batch was seen."""
        d = t.edge_devices
        with writing(self.engine) as conn:
            if conn.execute(select(d.c.device).where(d.c.device == device)).first() is None:
                _new_device(conn, device, group, None, at)
            done = conn.execute(
                update(d)
                .where(d.c.device == device, d.c.telemetry_seq < last_seq)
                .values(
                    telemetry_seq=last_seq,
                    telemetry_rows=d.c.telemetry_rows + rows,
                    dropped_rows=d.c.dropped_rows + dropped,
                    last_seen=at,
                )
            )
        return bool(done.rowcount)

    def devices(self, group: str | None = None) -> list[Device]:
        """Devices by name."""
        query = select(t.edge_devices).order_by(t.edge_devices.c.device)
        if group is not None:
            query = query.where(t.edge_devices.c.device_group == group)
        with reading(self.engine) as conn:
            return [_device(r) for r in conn.execute(query)]
