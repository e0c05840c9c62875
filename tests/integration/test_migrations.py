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


def _metric_history_survives_packing(uri: str) -> None:
    """A store written before 0013 (one row per point) reads back every point after it:
    values, NaN and infinities, order by step then time then logging, runs and keys apart,
    a key longer than one chunk split and rejoined; a downgrade unpacks them again."""
    import math

    import sqlalchemy as sa
    from alembic import command

    from shipyard.store import migrate
    from shipyard.store import schema as t
    from shipyard.store.tracking import SqlTrackingStore

    engine = make_engine(uri)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate._config(conn), "0012_edge")
            conn.execute(sa.insert(t.experiments).values(id="exp_1", name="e", created_at=1))
            for run in ("run_a", "run_b"):
                conn.execute(
                    sa.insert(t.runs).values(
                        id=run, experiment_id="exp_1", name=run, status="RUNNING", start_time=1
                    )
                )
            old = [
                ("run_a", "loss", 0.5, False, 2, 10),
                ("run_a", "loss", 0.0, True, 1, 30),  # NaN, an earlier step logged later
                ("run_a", "loss", math.inf, False, 1, 20),
                ("run_a", "loss", 0.25, False, 1, 20),  # same step and time: logging order
                ("run_b", "loss", 9.0, False, 0, 5),
                ("run_a", "auc", -math.inf, False, 0, 7),
            ] + [("run_b", "long", float(i), False, i, i) for i in range(120_000)]
            conn.execute(
                sa.text(
                    "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) "
                    "VALUES (:r, :k, :v, :n, :s, :ts)"
                ),
                [dict(zip(("r", "k", "v", "n", "s", "ts"), row, strict=True)) for row in old],
            )
        assert upgrade(engine) == ("0012_edge", head_revision())
        store = SqlTrackingStore(engine)
        loss = store.get_metric_history("run_a", "loss")
        assert [(m.step, m.timestamp) for m in loss] == [(1, 20), (1, 20), (1, 30), (2, 10)]
        assert loss[0].value == math.inf and loss[1].value == 0.25
        assert math.isnan(loss[2].value) and loss[3].value == 0.5
        assert [m.value for m in store.get_metric_history("run_a", "auc")] == [-math.inf]
        assert [m.value for m in store.get_metric_history("run_b", "loss")] == [9.0]
        long = store.get_metric_history("run_b", "long")
        assert [m.step for m in long] == list(range(120_000))
        assert all(m.value == m.step for m in long)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM metric_chunks")).scalar() == 6
        with engine.begin() as conn:
            command.downgrade(migrate._config(conn), "0012_edge")
        with engine.connect() as conn:
            back = conn.execute(
                sa.text("SELECT count(*), sum(CASE WHEN is_nan THEN 1 ELSE 0 END) FROM metrics")
            ).one()
        assert tuple(back) == (len(old), 1)
    finally:
        engine.dispose()


def test_sqlite_metric_history_survives_the_move_to_packed_chunks(tmp_path: Path) -> None:
    _metric_history_survives_packing(f"sqlite:///{tmp_path / 'p.db'}")


@pytest.mark.postgres
def test_postgres_metric_history_survives_the_move_to_packed_chunks(postgres_uri: str) -> None:
    _metric_history_survives_packing(postgres_uri)
