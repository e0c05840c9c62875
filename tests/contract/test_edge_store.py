"""The edge store on SQLite and PostgreSQL: rollouts supersede each other, a telemetry batch
is taken once however often it arrives, devices' reports are kept."""

from __future__ import annotations

import pytest

from shipyard.bootstrap import Backend
from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.edge.ports import ACTIVE, SUPERSEDED, BundleRecord, Rollout
from shipyard.store.edge import SqlEdgeStore


def _bundle(name: str) -> BundleRecord:
    return BundleRecord(
        name,
        "fraud",
        1,
        "terminal",
        "onnx-f32",
        "ab" * 32,
        1234,
        "k" * 16,
        "cd" * 32,
        {"chosen": "onnx-f32"},
        1,
        "ana",
    )


def test_edge_records_on_each_store(store_backend: Backend) -> None:
    engine = store_backend.tracking.store.engine  # type: ignore[attr-defined]
    store = SqlEdgeStore(engine)
    store.add_bundle(_bundle("b1"))
    store.add_bundle(_bundle("b2"))
    with pytest.raises(ConflictError):
        store.add_bundle(_bundle("b1"))
    assert store.get_bundle("b1").report == {"chosen": "onnx-f32"}
    with pytest.raises(NotFoundError):
        store.get_bundle("nope")
    store.add_rollout(Rollout("rol_1", "lisbon", "b1", None, 100, ACTIVE, 10, "ana", 10))
    store.add_rollout(Rollout("rol_2", "lisbon", "b2", "b1", 20, ACTIVE, 20, "ana", 20))
    newest, older = store.rollouts("lisbon")
    assert (newest.id, newest.status, older.status) == ("rol_2", ACTIVE, SUPERSEDED)
    assert store.set_rollout("rol_2", percent=60, status=ACTIVE, at=30).percent == 60
    assert store.report("t-1", "lisbon", "b1", 40) is None
    assert store.report("t-1", "lisbon", "b2", 50).bundle_id == "b1"  # type: ignore[union-attr]
    assert store.accept_telemetry("t-1", "lisbon", 10, 100, 2, 60)
    assert not store.accept_telemetry("t-1", "lisbon", 10, 100, 2, 61)  # the same batch again
    assert store.accept_telemetry("t-2", "lisbon", 5, 7, 0, 62)  # a device never seen
    devices = {d.device: d for d in store.devices("lisbon")}
    assert (devices["t-1"].telemetry_rows, devices["t-1"].dropped_rows) == (100, 2)
    assert devices["t-1"].bundle_id == "b2" and devices["t-2"].telemetry_seq == 5
