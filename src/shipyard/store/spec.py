"""SpecObjectStore in SQLite or PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Table, delete, select, update

from shipyard.spec.ports import StoredObject
from shipyard.store import schema as t
from shipyard.store.engine import reading, writing
from shipyard.store.tracking import upsert


class _Table:
    """One (kind, name) -> body table, with when and by whom each row was written."""

    def __init__(self, engine: Engine, table: Table, at: str, by: str) -> None:
        self.engine, self.table, self.at, self.by = engine, table, at, by

    def rows(self) -> list[StoredObject]:
        c = self.table.c
        with reading(self.engine) as conn:
            found = conn.execute(select(self.table).order_by(c.kind, c.name)).all()
        return [
            StoredObject(
                r.kind, r.name, json.loads(r.body), getattr(r, self.at), getattr(r, self.by)
            )
            for r in found
        ]

    def put(self, kind: str, name: str, body: dict[str, Any], at: int, by: str) -> None:
        values = {
            "kind": kind,
            "name": name,
            "body": json.dumps(body, sort_keys=True),
            self.at: at,
            self.by: by,
        }
        with writing(self.engine) as conn:
            stmt = upsert(conn, self.table).values(values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["kind", "name"],
                    set_={k: stmt.excluded[k] for k in ("body", self.at, self.by)},
                )
            )

    def delete(self, kind: str, name: str) -> None:
        c = self.table.c
        with writing(self.engine) as conn:
            conn.execute(delete(self.table).where(c.kind == kind, c.name == name))


class SqlSpecObjectStore:
    """Declared objects and apply snapshots, one row per (kind, name)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._objects = _Table(engine, t.spec_objects, "updated_at", "updated_by")
        self._applied = _Table(engine, t.spec_applied, "applied_at", "applied_by")

    def list_objects(self) -> list[StoredObject]:
        """Every declared object, by kind and name."""
        return self._objects.rows()

    def put_object(self, kind: str, name: str, body: dict[str, Any], at: int, by: str) -> None:
        """Insert or replace a declared object."""
        self._objects.put(kind, name, body, at, by)

    def delete_object(self, kind: str, name: str) -> None:
        """Remove a declared object."""
        self._objects.delete(kind, name)

    def applied(self) -> list[StoredObject]:
        """The last apply's snapshot of every managed object."""
        return self._applied.rows()

    def record_applied(self, kind: str, name: str, body: dict[str, Any], at: int, by: str) -> None:
        """Keep what an apply wrote."""
        self._applied.put(kind, name, body, at, by)

    def forget_applied(self, kind: str, name: str) -> None:
        """The object is no longer managed."""
        self._applied.delete(kind, name)

    def lock(self) -> None:
        """Update the lock row: PostgreSQL holds its row lock, SQLite its write lock, until
        the unit of work ends, so a second apply waits and then plans on the first's result."""
        with writing(self.engine) as conn:
            conn.execute(update(t.spec_lock).values(applies=t.spec_lock.c.applies + 1))
