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


def _chunks(rows: Any) -> Iterator[dict[str, Any]]:
    """Rows ordered by (run, key) as chunk rows of at most ``_CHUNK`` points."""
    current: tuple[str, str] | None = None
    records: list[bytes] = []
    for run_id, key, value, is_nan, step, timestamp in rows:
        if (run_id, key) != current or len(records) == _CHUNK:
            if current is not None:
                yield {
                    "run_id": current[0],
                    "key": current[1],
                    "points": len(records),
                    "data": b"".join(records),
                }
            current, records = (run_id, key), []
        records.append(_POINT.pack(step, timestamp, float("nan") if is_nan else value))
    if current is not None:
        yield {
            "run_id": current[0],
            "key": current[1],
            "points": len(records),
            "data": b"".join(records),
        }


def upgrade() -> None:
    """Create metric_chunks, carry every point over, drop metrics."""
    chunks = op.create_table(
        "metric_chunks",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metric_chunks_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_metric_chunks"),
    )
    op.create_index("ix_metric_chunks_run_id_key_id", "metric_chunks", ["run_id", "key", "id"])
    conn = op.get_bind()
    old = sa.table(
        "metrics",
        sa.column("id"),
        sa.column("run_id"),
        sa.column("key"),
        sa.column("value"),
        sa.column("is_nan"),
        sa.column("step"),
        sa.column("timestamp"),
    )
    # By step, then id: the order of the (run, key, step) index (SQLite keeps the rowid in
    # it), so a large store is read without a sort. Reads order by step anyway, and points
    # of one step keep their logging order.
    rows = conn.execute(
        sa.select(
            old.c.run_id, old.c.key, old.c.value, old.c.is_nan, old.c.step, old.c.timestamp
        ).order_by(old.c.run_id, old.c.key, old.c.step, old.c.id),
        execution_options={"yield_per": 10_000},
    )
    pending: list[dict[str, Any]] = []
    for chunk in _chunks(rows):
        pending.append(chunk)
        if len(pending) == 200:
            conn.execute(chunks.insert(), pending)
            pending = []
    if pending:
        conn.execute(chunks.insert(), pending)
    op.drop_index("ix_metrics_run_id_key_step", table_name="metrics")
    op.drop_table("metrics")


def downgrade() -> None:
    """Unpack every chunk back into one row per point."""
    metrics = op.create_table(
        "metrics",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metrics_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    )
    op.create_index("ix_metrics_run_id_key_step", "metrics", ["run_id", "key", "step"])
    conn = op.get_bind()
    stored = sa.table(
        "metric_chunks", sa.column("id"), sa.column("run_id"), sa.column("key"), sa.column("data")
    )
    rows: Any = conn.execute(
        sa.select(stored.c.run_id, stored.c.key, stored.c.data).order_by(stored.c.id),
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
            conn.execute(metrics.insert(), points)
    op.drop_index("ix_metric_chunks_run_id_key_id", table_name="metric_chunks")
    op.drop_table("metric_chunks")
