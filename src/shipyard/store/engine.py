"""Engines: SQLite in WAL mode with a busy timeout, PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.settings import sqlite_path

SQLITE_BUSY_TIMEOUT_MS = 60_000
WRITE = "shipyard_write"


def make_engine(uri: str, *, sqlite_synchronous: str = "full") -> Engine:
    """Create an engine for a store URI, preparing SQLite files and pragmas."""
    if uri.startswith("postgresql://"):
        # psycopg 3 is the driver we ship in the `postgres` extra.
        uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    try:
        if uri.startswith("sqlite"):
            path = sqlite_path(uri)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(uri, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(engine, "NORMAL" if sqlite_synchronous == "normal" else "FULL")
            return engine
        return create_engine(uri, pool_pre_ping=True, pool_size=8, max_overflow=8)
    except ModuleNotFoundError as exc:
        raise InvalidInputError(
            f"the store URI needs a driver that is not installed ({exc.name}); for PostgreSQL "
            "install the extra: pip install 'shipyard[postgres]'",
            uri=_redact(uri),
        ) from exc
    except SQLAlchemyError as exc:  # malformed URLs
        raise InvalidInputError(f"cannot use store URI {_redact(uri)!r}: {exc}") from exc
    except ValueError as exc:
        raise InvalidInputError(f"cannot use store URI {_redact(uri)!r}: {exc}") from exc


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that later upgrades to a
        # write can fail with SQLITE_BUSY at once instead of waiting for the busy timeout.
        if conn.get_execution_options().get(WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from the start."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose database errors come out as StoreError naming the store."""
    try:
        with write_transaction(engine) as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise wrap_db_error(exc, engine) from exc


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose database errors come out as StoreError."""
    try:
        with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise wrap_db_error(exc, engine) from exc


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def describe(engine: Engine) -> str:
    """A password-free description of the engine's database, for messages."""
    return _redact(engine.url.render_as_string(hide_password=True))


def wrap_db_error(exc: SQLAlchemyError, engine: Engine) -> StoreError:
    """Turn a database error into a StoreError naming the database."""
    return StoreError(f"database error on {describe(engine)}: {exc.__class__.__name__}: {exc}")


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine, if any."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database)
