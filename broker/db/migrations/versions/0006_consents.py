"""Consent records and held exchanges awaiting the citizen's preview.

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_pseudonym", sa.String(64), nullable=False),
        sa.Column("subject_key_version", sa.String(32), nullable=False),
        sa.Column("from_party", sa.String(100), nullable=False),
        sa.Column("to_party", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("document_types", sa.JSON, nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=True),
        sa.Column("collection_method", sa.String(20), nullable=False),
        sa.Column("recorded_by_name", sa.String(200), nullable=False),
        sa.Column("recorded_by_role", sa.String(200), nullable=True),
        sa.Column("recorder_party", sa.String(100), nullable=False),
        sa.Column("recorder_client", sa.String(100), nullable=False),
        sa.Column("recorded_at_ms", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_at_ms", sa.BigInteger, nullable=True),
        sa.Column("withdrawn_by_client", sa.String(100), nullable=True),
        sa.Column("withdrawal_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_consents_subject", "consents", ["subject_pseudonym"])
    op.create_table(
        "preview_holds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("exchange_id", sa.String(36), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("subject_pseudonym", sa.String(64), nullable=False),
        sa.Column("subject_key_version", sa.String(32), nullable=False),
        sa.Column("requester_party", sa.String(100), nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger, nullable=True),
        sa.Column("decided_by_client", sa.String(100), nullable=True),
    )
    op.create_index("ix_preview_holds_subject", "preview_holds", ["subject_pseudonym"])


def downgrade() -> None:
    op.drop_index("ix_preview_holds_subject", table_name="preview_holds")
    op.drop_table("preview_holds")
    op.drop_index("ix_consents_subject", table_name="consents")
    op.drop_table("consents")
