"""Edge: signed bundles, staged rollouts per device group, and what each device reports.

Revision ID: 0012_edge
Revises: 0011_spec
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_edge"
down_revision = "0011_spec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add edge_bundles, edge_rollouts and edge_devices."""
    op.create_table(
        "edge_bundles",
        sa.Column("id", sa.String(160), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("blob_key", sa.String(300), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_edge_bundles"),
    )
    op.create_index("ix_edge_bundles_model_version", "edge_bundles", ["model", "version"])
    op.create_table(
        "edge_rollouts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("device_group", sa.String(64), nullable=False),
        sa.Column("bundle_id", sa.String(160), nullable=False),
        sa.Column("previous_bundle_id", sa.String(160), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"], ["edge_bundles.id"], name="fk_edge_rollouts_bundle_id_edge_bundles"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_edge_rollouts"),
    )
    op.create_index("ix_edge_rollouts_device_group", "edge_rollouts", ["device_group"])
    op.create_table(
        "edge_devices",
        sa.Column("device", sa.String(100), nullable=False),
        sa.Column("device_group", sa.String(64), nullable=False),
        sa.Column("bundle_id", sa.String(160), nullable=True),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("telemetry_seq", sa.BigInteger(), nullable=False),
        sa.Column("telemetry_rows", sa.BigInteger(), nullable=False),
        sa.Column("dropped_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device", name="pk_edge_devices"),
    )
    op.create_index("ix_edge_devices_device_group", "edge_devices", ["device_group"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("edge_devices")
    op.drop_table("edge_rollouts")
    op.drop_table("edge_bundles")
