"""Pipelines: pipeline runs, step runs, the step cache and lineage edges.

Revision ID: 0002_pipelines
Revises: 0001_tracking
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_pipelines"
down_revision = "0001_tracking"
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    """Create the pipeline tables."""
    op.create_table(
        "pipeline_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_pipeline_runs_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_started_at", "pipeline_runs", ["pipeline", "started_at"]
    )
    op.create_table(
        "step_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_run_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name="fk_step_runs_pipeline_run_id_pipeline_runs",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_step_runs_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_step_runs"),
    )
    op.create_index(
        "ix_step_runs_pipeline_run_id_position", "step_runs", ["pipeline_run_id", "position"]
    )
    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("step", sa.String(250), nullable=False),
        sa.Column("step_run_id", ID, nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name="pk_step_cache"),
    )
    op.create_table(
        "lineage_edges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
    )
    op.create_index("ix_lineage_edges_source", "lineage_edges", ["source"])
    op.create_index("ix_lineage_edges_target", "lineage_edges", ["target"])


def downgrade() -> None:
    """Drop the pipeline tables."""
    for table in ("lineage_edges", "step_cache", "step_runs", "pipeline_runs"):
        op.drop_table(table)
