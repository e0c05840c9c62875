"""Metric history packed: one row per key of each batch instead of one per point.

Revision ID: 0013_metric_chunks
Revises: 0012_edge
Create Date: 2026-12-07

Every stored point is carried over, in the order it was logged, as little-endian
(step int64, timestamp int64, value float64) records; points flagged NaN become NaN. The
record format is written out here rather than imported, so this migration keeps meaning
what it meant if the application's format ever changes (that would be a new migration).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013_metric_chunks"
down_revision = "0012_edge"
branch_labels = None
depends_on = None

_POINT = struct.Struct("<qqd")
_CHUNK = 50_000
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Both tables as this revision knows them, each written once: upgrade creates the one and
# reads and drops the other, downgrade the reverse. (`runs` is here only so the foreign
# keys resolve; it is never created or dropped.)
_SCHEMA = sa.MetaData()
sa.Table("runs", _SCHEMA, sa.Column("id", sa.String(40), primary_key=True))
_METRICS = sa.Table(
    "metrics",
    _SCHEMA,
    sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float(precision=53), nullable=False),
    sa.Column("is_nan", sa.Boolean(), nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metrics_run_id_runs"),
    sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    sa.Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)
_CHUNKS = sa.Table(
    "metric_chunks",
    _SCHEMA,
    sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("points", sa.Integer(), nullable=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metric_chunks_run_id_runs"),
    sa.PrimaryKeyConstraint("id", name="pk_metric_chunks"),
    sa.Index("ix_metric_chunks_run_id_key_id", "run_id", "key", "id"),
)


def _chunks(rows: Any) -> Iterator[dict[str, Any]]:
    """Point rows ordered by (run, key) as chunk rows of at most ``_CHUNK`` points."""
    for (run_id, key), points in groupby(rows, key=itemgetter(0, 1)):
        while part := [
            _POINT.pack(step, timestamp, float("nan") if is_nan else value)
            for _, _, value, is_nan, step, timestamp in islice(points, _CHUNK)
        ]:
            yield {"run_id": run_id, "key": key, "points": len(part), "data": b"".join(part)}


def upgrade() -> None:
    """Create metric_chunks, carry every point over, drop metrics."""
    conn = op.get_bind()
    _CHUNKS.create(conn)
    old = _METRICS.c
    # By step, then id: the order of the (run, key, step) index (SQLite keeps the rowid in
    # it), so a large store is read without a sort. Reads order by step anyway, and points
    # of one step keep their logging order.
    rows = conn.execute(
        sa.select(old.run_id, old.key, old.value, old.is_nan, old.step, old.timestamp).order_by(
            old.run_id, old.key, old.step, old.id
        ),
        execution_options={"yield_per": 10_000},
    )
    pending: list[dict[str, Any]] = []
    for chunk in _chunks(rows):
        pending.append(chunk)
        if len(pending) == 200:
            conn.execute(_CHUNKS.insert(), pending)
            pending = []
    if pending:
        conn.execute(_CHUNKS.insert(), pending)
    _METRICS.drop(conn)


def downgrade() -> None:
    """Unpack every chunk back into one row per point."""
    conn = op.get_bind()
    _METRICS.create(conn)
    stored = _CHUNKS.c
    rows: Any = conn.execute(
        sa.select(stored.run_id, stored.key, stored.data).order_by(stored.id),
        execution_options={"yield_per": 100},
    )
    for run_id, key, data in rows:
        points = [
            {
                "run_id": run_id,
                "key": key,
                "value": 0.0 if v != v else v,
                "is_nan": v != v,
                "step": step,
                "timestamp": ts,
            }
            for step, ts, v in _POINT.iter_unpack(data)
        ]
        if points:
            conn.execute(_METRICS.insert(), points)
    _CHUNKS.drop(conn)
