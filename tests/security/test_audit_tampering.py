"""Every kind of audit tampering is detected, and the first bad event is named.

The attacker here owns the database: they can drop the append-only triggers, then edit,
delete, insert, reorder, truncate or rewrite the chain with recomputed hashes. What they do
not have is the anchor's key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.bootstrap import Backend, local_backend
from shipyard.core.actor import acting_as
from shipyard.core.audit import AuditEvent, event_hash
from shipyard.core.errors import StoreError
from shipyard.core.settings import Settings

EVENTS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        settings = Settings(uri=str(tmp_path / "store"))
    else:
        settings = Settings(
            uri=request.getfixturevalue("postgres_uri"),
            artifacts=str(tmp_path / "blobs"),
            audit_anchor=str(tmp_path / "anchor" / "audit-anchor.json"),
        )
    made = local_backend(settings)
    with acting_as("alice"):
        for i in range(EVENTS):
            made.governance.audit.record("test.event", f"thing:{i}", {"i": i})
    yield made
    made.close()


def _owner(backend: Backend) -> sa.Engine:
    """The database as its owner sees it, with the append-only triggers dropped."""
    engine = sa.create_engine(backend.uri)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TRIGGER audit_events_append_only ON audit_events"))
            conn.execute(sa.text("DROP TRIGGER audit_events_no_truncate ON audit_events"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
    return engine


def _rehash(conn: sa.Connection, start: int = 1) -> None:
    """Recompute every hash from ``start`` on, as a careful attacker would."""
    rows = conn.execute(sa.text("SELECT * FROM audit_events ORDER BY seq")).mappings().all()
    prev = "0" * 64
    for row in rows:
        if row["seq"] >= start:
            event = AuditEvent(
                row["seq"],
                row["id"],
                row["time"],
                row["actor"],
                row["action"],
                row["object"],
                json.loads(row["payload"]),
                prev,
            )
            digest = event_hash(event)
            conn.execute(
                sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": digest, "s": row["seq"]},
            )
            prev = digest
        else:
            prev = row["hash"]


def _sql(*statements: str, rehash_from: int | None = None) -> Callable[[sa.Connection], None]:
    def run(conn: sa.Connection) -> None:
        for statement in statements:
            conn.execute(sa.text(statement))
        if rehash_from is not None:
            _rehash(conn, rehash_from)

    return run


TAMPERING = {
    "edit a payload": (_sql("UPDATE audit_events SET payload = '{\"i\": 99}' WHERE seq = 4"), 4),
    "edit an actor": (_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"), 3),
    "edit an action": (_sql("UPDATE audit_events SET action = 'x' WHERE seq = 5"), 5),
    "edit a time": (_sql("UPDATE audit_events SET time = 1 WHERE seq = 2"), 2),
    "edit a hash": (_sql("UPDATE audit_events SET hash = prev_hash WHERE seq = 6"), 6),
    "delete one in the middle": (_sql("DELETE FROM audit_events WHERE seq = 4"), 5),
    "delete the first": (_sql("DELETE FROM audit_events WHERE seq = 1"), 2),
    "cut the newest event": (_sql(f"DELETE FROM audit_events WHERE seq = {EVENTS}"), EVENTS),
    "cut the newest three": (
        _sql(f"DELETE FROM audit_events WHERE seq > {EVENTS - 3}"),
        EVENTS - 2,
    ),
    "delete all": (_sql("DELETE FROM audit_events"), 1),
    "edit and rehash the rest": (
        _sql("UPDATE audit_events SET payload = '{\"i\": 99}' WHERE seq = 4", rehash_from=4),
        EVENTS,
    ),
    "rewrite the whole chain": (
        _sql("UPDATE audit_events SET actor = 'mallory'", rehash_from=1),
        EVENTS,
    ),
    "delete one and renumber with new hashes": (
        _sql(
            "DELETE FROM audit_events WHERE seq = 3",
            "UPDATE audit_events SET seq = seq - 1 WHERE seq > 3",
            rehash_from=3,
        ),
        EVENTS,
    ),
    "insert at the end": (
        _sql(
            "INSERT INTO audit_events (seq, id, time, actor, action, object, payload, prev_hash, "
            f"hash) SELECT {EVENTS + 1}, 'evt_forged', 1, 'mallory', 'alias.set', 'x', '{{}}', "
            f"hash, hash FROM audit_events WHERE seq = {EVENTS}"
        ),
        EVENTS + 1,
    ),
    "swap two events": (
        _sql(
            "UPDATE audit_events SET seq = -1 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = -1",
        ),
        2,
    ),
    "change an id": (_sql("UPDATE audit_events SET id = 'evt_other' WHERE seq = 2"), 2),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_every_kind_of_tampering_is_detected_at_its_first_event(
    backend: Backend, kind: str
) -> None:
    audit = backend.governance.audit
    clean = audit.verify()
    assert clean.ok and clean.events == EVENTS and clean.anchored == EVENTS
    tamper, first_bad = TAMPERING[kind]
    engine = _owner(backend)
    with engine.begin() as conn:
        tamper(conn)
    engine.dispose()
    broken = audit.verify()
    assert not broken.ok, kind
    assert broken.broken_at == first_bad, (kind, broken)


def test_truncate_is_detected(backend: Backend) -> None:
    engine = _owner(backend)
    with engine.begin() as conn:
        statement = (
            "TRUNCATE audit_events"
            if conn.dialect.name == "postgresql"
            else "DELETE FROM audit_events"
        )
        conn.execute(sa.text(statement))
    engine.dispose()
    broken = backend.governance.audit.verify()
    assert not broken.ok and "missing" in broken.reason


def test_the_app_cannot_update_or_delete_audit_events(backend: Backend) -> None:
    engine = sa.create_engine(backend.uri)
    for statement in (
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE audit_events"))
    engine.dispose()
    assert backend.governance.audit.verify().ok


def test_a_forged_or_deleted_anchor_is_detected(backend: Backend) -> None:
    anchor = backend.governance.audit.anchor
    assert anchor is not None
    path: Path = anchor.path  # type: ignore[attr-defined]
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc | {"seq": 2}))
    with pytest.raises(StoreError, match="bad signature"):
        backend.governance.audit.verify()
    path.unlink()
    broken = backend.governance.audit.verify()
    assert not broken.ok and "anchor is missing" in broken.reason
    with acting_as("alice"):
        backend.governance.audit.record("test.event", "thing:x")
    assert backend.governance.audit.verify().ok
