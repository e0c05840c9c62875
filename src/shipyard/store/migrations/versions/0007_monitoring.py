"""Monitoring: delayed labels (feedback) and monitor results per window.

Revision ID: 0007_monitoring
Revises: 0006_governance
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_monitoring"
down_revision = "0006_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the feedback and monitor_results tables."""
    op.create_table(
        "feedback",
        sa.Column("deployment", sa.String(250), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "request_id", "row", name="pk_feedback"),
    )
    op.create_index("ix_feedback_deployment_received_at", "feedback", ["deployment", "received_at"])
    op.create_table(
        "monitor_results",
        sa.Column("monitor", sa.String(250), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("monitor", "window_start", "window_end", name="pk_monitor_results"),
    )


def downgrade() -> None:
    """Drop the monitoring tables."""
    op.drop_table("monitor_results")
    op.drop_table("feedback")
