"""Alerts raised by monitor rules, with their delivery record.

Revision ID: 0008_alerts
Revises: 0007_monitoring
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_alerts"
down_revision = "0007_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the alerts table."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("monitor", sa.String(250), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_monitor_rule_status", "alerts", ["monitor", "rule", "status"])


def downgrade() -> None:
    """Drop the alerts table."""
    op.drop_table("alerts")
