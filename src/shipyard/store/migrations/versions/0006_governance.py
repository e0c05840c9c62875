"""Governance: audit chain, users and tokens, promotion requests and approvals, the
regulatory fields of registered models, and OpenLineage events received from other tools.

Revision ID: 0006_governance
Revises: 0005_gates
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_governance"
down_revision = "0005_gates"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the governance tables and add the model fields."""
    with op.batch_alter_table("registered_models") as batch:
        batch.add_column(sa.Column("use_case", sa.String(64), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(250), nullable=True))
        batch.add_column(sa.Column("risk_tier", sa.String(32), nullable=True))
        batch.add_column(sa.Column("intended_use", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("approvals_required", sa.Integer(), nullable=False, server_default="1")
        )
    op.create_table(
        "audit_events",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.String(500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("id", name="uq_audit_events_id"),
    )
    op.create_index("ix_audit_events_object_seq", "audit_events", ["object", "seq"])
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_table(
        "users",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user", sa.String(250), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name="fk_api_tokens_user_users"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("secret_hash", name="uq_api_tokens_secret_hash"),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(250), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("gate_report", sa.String(40), nullable=True),
        sa.Column("previous_champion", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model"],
            ["registered_models.name"],
            name="fk_promotion_requests_model_registered_models",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_promotion_requests"),
    )
    op.create_index(
        "ix_promotion_requests_model_version", "promotion_requests", ["model", "version"]
    )
    op.create_table(
        "approvals",
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("approver", sa.String(250), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name="fk_approvals_request_id_promotion_requests",
        ),
        sa.PrimaryKeyConstraint("request_id", "approver", name="pk_approvals"),
    )

    op.create_table(
        "openlineage_events",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("job_namespace", sa.String(500), nullable=False),
        sa.Column("job_name", sa.String(500), nullable=False),
        sa.Column("event_time", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_openlineage_events"),
    )
    op.create_index("ix_openlineage_events_run_id", "openlineage_events", ["run_id"])


def downgrade() -> None:
    """Drop the governance tables and the model fields."""
    for table in (
        "openlineage_events",
        "approvals",
        "promotion_requests",
        "api_tokens",
        "users",
        "audit_events",
    ):
        op.drop_table(table)
    with op.batch_alter_table("registered_models") as batch:
        for column in ("approvals_required", "intended_use", "risk_tier", "owner", "use_case"):
            batch.drop_column(column)
