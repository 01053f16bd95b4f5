"""The status of every attestation the broker signed (its index in the status list).

``attestation_statuses``: one row per attestation, allocated before it is signed; ``status``
turns ``revoked`` when the consent it was given under is withdrawn or its document is found
altered (see broker/attestation/tables.py).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attestation_statuses",
        sa.Column("idx", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("jti", sa.String(36), nullable=False),
        sa.Column("exchange_id", sa.String(36), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(36), nullable=True),
        sa.Column("audience", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("issued_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("revoked_reason", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("idx", name="pk_attestation_statuses"),
        sa.UniqueConstraint("jti", name="uq_attestation_statuses_jti"),
    )
    op.create_index("ix_attestation_statuses_sha256", "attestation_statuses", ["document_sha256"])
    op.create_index("ix_attestation_statuses_consent", "attestation_statuses", ["consent_id"])


def downgrade() -> None:
    op.drop_index("ix_attestation_statuses_consent", table_name="attestation_statuses")
    op.drop_index("ix_attestation_statuses_sha256", table_name="attestation_statuses")
    op.drop_table("attestation_statuses")
