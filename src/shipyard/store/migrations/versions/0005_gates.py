"""Gate reports stored on model versions.

Revision ID: 0005_gates
Revises: 0004_registry
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_gates"
down_revision = "0004_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the gate_reports table."""
    op.create_table(
        "gate_reports",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("data_digest", sa.String(64), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model"], ["registered_models.name"], name="fk_gate_reports_model_registered_models"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gate_reports"),
    )
    op.create_index(
        "ix_gate_reports_model_version_created_at",
        "gate_reports",
        ["model", "version", "created_at"],
    )


def downgrade() -> None:
    """Drop the gate_reports table."""
    op.drop_table("gate_reports")
