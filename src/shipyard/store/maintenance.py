"""What the consistency check needs from the database: its own integrity, and which blobs
the records point at."""

from __future__ import annotations

import json

from sqlalchemy import Engine, select, text

from shipyard.store import schema as t
from shipyard.store.engine import reading


class SqlStoreIntegrity:
    """Integrity checks and blob references of one metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def problems(self) -> list[str]:
        """What the database itself reports as damaged (SQLite's page and key checks;
        PostgreSQL keeps its constraints itself and reports corruption when read)."""
        if self.engine.dialect.name != "sqlite":
            with reading(self.engine) as conn:
                conn.execute(text("SELECT 1"))
            return []
        found: list[str] = []
        with reading(self.engine) as conn:
            for (line,) in conn.exec_driver_sql("PRAGMA integrity_check").all():
                if line != "ok":
                    found.append(f"integrity: {line}")
            for row in conn.exec_driver_sql("PRAGMA foreign_key_check").all():
                found.append(f"foreign key: {row[0]} row {row[1]} points at a missing {row[2]}")
        return found

    def referenced_digests(self) -> set[str]:
        """Every blob a record names: run artifacts (deleted runs' too, kept for the audit),
        step outputs, cached outputs, monitors' reference files sent through a server and
        signed edge bundles."""
        with reading(self.engine) as conn:
            rows = conn.execute(select(t.run_artifacts.c.digest).distinct()).all()
            found: set[str] = {str(r[0]) for r in rows}
            for table in (t.step_runs, t.step_cache):
                for row in conn.execute(select(table.c.outputs)).all():
                    found.update(str(o["digest"]) for o in json.loads(row[0] or "[]"))
            named = t.monitor_results.c.result.like('%"reference_blob"%')
            for (body,) in conn.execute(select(t.monitor_results.c.result).where(named)).all():
                blob = json.loads(str(body)).get("reference_blob")
                if blob:
                    found.add(str(blob))
            found.update(str(r[0]) for r in conn.execute(select(t.edge_bundles.c.blob_key)))
        return found
