"""Runs record a heartbeat, so runs of clients that died can be ended.

Revision ID: 0010_run_heartbeat
Revises: 0009_audit_append_only
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_run_heartbeat"
down_revision = "0009_audit_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add runs.heartbeat_at and an index to find stale running runs."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_runs_status_heartbeat_at", "runs", ["status", "heartbeat_at"])


def downgrade() -> None:
    """Drop the column and its index."""
    op.drop_index("ix_runs_status_heartbeat_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
