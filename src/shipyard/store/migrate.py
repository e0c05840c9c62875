"""Schema migrations: bring a database to the newest Alembic revision, safely and once.

Runs on first use of a store and from ``shipyard db upgrade``. Concurrent first uses are
serialised: SQLite by its write lock (BEGIN IMMEDIATE), PostgreSQL by an advisory lock,
and the revision is re-read under the lock, so two processes never migrate twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from shipyard.store.engine import wrap_db_error, write_transaction

if TYPE_CHECKING:  # Alembic is imported only when a migration actually runs
    from alembic.config import Config

# The newest revision this version ships; a unit test checks it against the scripts, so
# opening an up-to-date store never has to load Alembic and parse every migration.
HEAD = "0013_metric_chunks"
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5348495059415244  # "SHIPYARD"


def _config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this version of Shipyard."""
    return HEAD


def script_head() -> str | None:
    """The head revision as the migration scripts declare it (for the consistency test)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to head; return (revision before, revision after)."""
    try:
        before = current_revision(engine)
        if before == head_revision():
            return before, before
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            before = _revision(conn)
            if before != head_revision():
                from alembic import command

                command.upgrade(_config(conn), "head")
        return before, head_revision()
    except SQLAlchemyError as exc:
        raise wrap_db_error(exc, engine) from exc
