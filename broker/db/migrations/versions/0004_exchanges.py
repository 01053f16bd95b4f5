"""Exchange pipeline: idempotency keys, verification attempts; audit reads move into the log.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_ms", "idempotency_keys", ["created_ms"])
    op.create_table(
        "verification_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("subject_pseudonym", sa.String(100), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_verification_attempts_lookup",
        "verification_attempts",
        ["client_id", "subject_pseudonym", "at_ms"],
    )
    # Reads of audit data are entries of the tamper-evident log itself now.
    op.drop_table("audit_reads")


def downgrade() -> None:
    op.create_table(
        "audit_reads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
    )
    op.drop_index("ix_verification_attempts_lookup", table_name="verification_attempts")
    op.drop_table("verification_attempts")
    op.drop_index("ix_idempotency_keys_created_ms", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
