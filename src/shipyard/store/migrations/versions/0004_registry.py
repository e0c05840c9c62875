"""Model registry: models, versions, tags and aliases.

Revision ID: 0004_registry
Revises: 0003_schedules
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_registry"
down_revision = "0003_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry tables."""
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_registered_models"),
    )
    op.create_table(
        "model_tags",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_model_tags_name_registered_models"
        ),
        sa.PrimaryKeyConstraint("name", "key", name="pk_model_tags"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("artifact_path", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("flavors", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_model_versions_name_registered_models"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_tags_version_id_model_versions",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_model_version_tags"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_model_aliases_name_registered_models"
        ),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_model_aliases"),
    )


def downgrade() -> None:
    """Drop the registry tables."""
    for table in (
        "model_aliases",
        "model_version_tags",
        "model_versions",
        "model_tags",
        "registered_models",
    ):
        op.drop_table(table)
