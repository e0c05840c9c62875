"""Alembic: migrating an empty database to head gives exactly the ORM schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shipyard.store.engine import make_engine
from shipyard.store.migrate import current_revision, head_revision, upgrade
from shipyard.store.schema import metadata


def _assert_matches(uri: str) -> None:
    engine = make_engine(uri)
    try:
        assert upgrade(engine) == (None, head_revision())
        assert upgrade(engine) == (head_revision(), head_revision())  # idempotent
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_sqlite_migrates_to_the_orm_schema(tmp_path: Path) -> None:
    _assert_matches(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_migrates_to_the_orm_schema(postgres_uri: str) -> None:
    _assert_matches(postgres_uri)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000
    engine.dispose()


def test_head_constant_matches_the_migration_scripts() -> None:
    from shipyard.store.migrate import HEAD, script_head

    assert script_head() == HEAD


def test_sqlite_durability_is_a_setting(tmp_path: Path) -> None:
    full = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    normal = make_engine(f"sqlite:///{tmp_path / 'n.db'}", sqlite_synchronous="normal")
    with full.connect() as a, normal.connect() as b:
        assert a.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert b.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    full.dispose()
    normal.dispose()



def test_threads_opening_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    """Connections switching a new SQLite file to WAL at the same moment: SQLite refuses
    one of them at once ('database is locked', no busy wait), which failed a federated job
    opening the store beside its caller; every one must get the store, migrated once."""
    import threading

    from shipyard.bootstrap import local_backend
    from shipyard.core.settings import Settings

    failures: list[str] = []
    for trial in range(25):
        home = tmp_path / f"s{trial}"
        gate = threading.Barrier(4)

        def open_store(home: Path = home, gate: threading.Barrier = gate) -> None:
            gate.wait()
            try:
                local_backend(Settings(uri=str(home))).close()
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine = make_engine(f"sqlite:///{home / 'shipyard.db'}")
        assert current_revision(engine) == head_revision()
        engine.dispose()
    assert not failures, failures[:3]
