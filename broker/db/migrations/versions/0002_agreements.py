"""Agreements: party key trust store, recorded revocations, highest agreement version seen.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "party_keys",
        sa.Column("kid", sa.String(100), primary_key=True),
        sa.Column(
            "party_id",
            sa.String(100),
            sa.ForeignKey("parties.id", name="fk_party_keys_party_id_parties"),
            nullable=False,
        ),
        sa.Column("jwk", sa.JSON, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_party_keys_party_id", "party_keys", ["party_id"])
    op.create_table(
        "agreement_revocations",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("revoked_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_agreement_revocations_agreement_id", "agreement_revocations", ["agreement_id"]
    )
    op.create_table(
        "agreement_versions",
        sa.Column("agreement_id", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("content", sa.JSON, nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agreement_versions")
    op.drop_index("ix_agreement_revocations_agreement_id", table_name="agreement_revocations")
    op.drop_table("agreement_revocations")
    op.drop_index("ix_party_keys_party_id", table_name="party_keys")
    op.drop_table("party_keys")
