"""Schedules and their ticks.

Revision ID: 0003_schedules
Revises: 0002_pipelines
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_schedules"
down_revision = "0002_pipelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the schedule tables."""
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_tick_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("schedule", sa.String(250), nullable=False),
        sa.Column("nominal_time", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pipeline_run_id", sa.String(40), nullable=True),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("schedule", "nominal_time", name="pk_schedule_ticks"),
    )
    op.create_index("ix_schedule_ticks_schedule_status", "schedule_ticks", ["schedule", "status"])


def downgrade() -> None:
    """Drop the schedule tables."""
    op.drop_table("schedule_ticks")
    op.drop_table("schedules")
