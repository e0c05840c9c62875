"""Schema migrations: bring a database to the newest Alembic revision, safely and once.

Runs on first use of a store and from ``shipyard db upgrade``. Concurrent first uses are
serialised: SQLite by its write lock (BEGIN IMMEDIATE), PostgreSQL by an advisory lock,
and the revision is re-read under the lock, so two processes never migrate twice.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shipyard.store.engine import wrap_db_error, write_transaction

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5348495059415244  # "SHIPYARD"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of Shipyard."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package always ships at least one revision
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to head; return (revision before, revision after)."""
    try:
        before = current_revision(engine)
        if before == head_revision():
            return before, before
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            before = MigrationContext.configure(conn).get_current_revision()
            if before != head_revision():
                command.upgrade(_config(conn), "head")
        return before, head_revision()
    except SQLAlchemyError as exc:
        raise wrap_db_error(exc, engine) from exc
