"""Engines: SQLite in WAL mode with a busy timeout, PostgreSQL through psycopg 3."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
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


def _switch_to_wal(cursor: Any) -> None:
    """Put the database in WAL mode, waiting out other connections doing the same.

    Two connections opening a new store at once (threads of one process, as a federated job
    and its caller did) can get 'database is locked' at once here: SQLite does not call the
    busy handler where waiting could deadlock, so the switch is retried up to the busy
    timeout.
    """
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
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


@dataclass
class _Unit:
    """A transaction that several stores' writes join, with hooks around its commit."""

    engine: Engine
    conn: Connection
    before: list[Callable[[], None]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


_UNIT: ContextVar[_Unit | None] = ContextVar("shipyard_unit_of_work", default=None)


def _joined(engine: Engine) -> _Unit | None:
    unit = _UNIT.get()
    return unit if unit is not None and unit.engine is engine else None


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from the start.

    Inside a unit of work on the same engine it is a savepoint of the unit's transaction,
    so a failure undoes only its own writes and the unit decides what commits.
    """
    unit = _joined(engine)
    if unit is not None:
        with unit.conn.begin_nested():
            yield unit.conn
        return
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[None]:
    """One transaction for every store write inside it (joined, if one is open already).

    ``before_commit`` hooks run inside the transaction just before it commits (the audit
    chain is appended there, so its lock is the last one taken and held briefly);
    ``after_commit`` hooks run once it has committed (the anchor outside the database).
    """
    if _joined(engine) is not None:
        yield
        return
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                unit = _Unit(engine, conn)
                token = _UNIT.set(unit)
                try:
                    yield
                    i = 0
                    while i < len(unit.before):  # hooks may add hooks
                        unit.before[i]()
                        i += 1
                finally:
                    _UNIT.reset(token)
    except SQLAlchemyError as exc:
        raise wrap_db_error(exc, engine) from exc
    for hook in unit.after:
        hook()


class SqlTransactions:
    """Units of work on one engine (implements governance's Transactions port)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def atomic(self) -> Any:
        """A unit of work: everything written inside commits together or not at all."""
        return unit_of_work(self.engine)

    def before_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` in the open unit just before it commits; at once outside one."""
        self._hook(hook, before=True)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the open unit has committed; at once outside one."""
        self._hook(hook, before=False)

    def unit_state(self) -> dict[str, Any] | None:
        """The open unit's scratch dict, or None outside a unit."""
        unit = _joined(self.engine)
        return unit.state if unit is not None else None

    def _hook(self, hook: Callable[[], None], *, before: bool) -> None:
        unit = _joined(self.engine)
        if unit is None:
            hook()
        else:
            (unit.before if before else unit.after).append(hook)


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
    """A read-only connection whose database errors come out as StoreError.

    Inside a unit of work it is the unit's connection, so reads see its writes.
    """
    unit = _joined(engine)
    try:
        if unit is not None:
            yield unit.conn
            return
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
