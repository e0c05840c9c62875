"""Infrastructure as code: declared objects, the last apply's snapshot, the apply lock; and
the executor a schedule runs its pipeline on.

Revision ID: 0011_spec
Revises: 0010_run_heartbeat
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_spec"
down_revision = "0010_run_heartbeat"
branch_labels = None
depends_on = None


def _spec_rows(name: str, stamp: str) -> None:
    """A (kind, name) -> body table with when and by whom each row was written."""
    op.create_table(
        name,
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(f"{stamp}_at", sa.BigInteger(), nullable=False),
        sa.Column(f"{stamp}_by", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=f"pk_{name}"),
    )


def upgrade() -> None:
    """Add spec_objects, spec_applied, spec_lock (one row) and schedules.executor."""
    _spec_rows("spec_objects", "updated")
    _spec_rows("spec_applied", "applied")
    lock = op.create_table(
        "spec_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applies", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spec_lock"),
    )
    op.bulk_insert(lock, [{"id": 1, "applies": 0}])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(
            sa.Column("executor", sa.String(32), nullable=False, server_default="local")
        )


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("executor")
    op.drop_table("spec_lock")
    op.drop_table("spec_applied")
    op.drop_table("spec_objects")
