"""Provider notifications (webhooks, outbox) and the identity providers of parties.

Revision ID: 0007
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_webhooks_party_id_parties"),
        sa.PrimaryKeyConstraint("party_id", name="pk_webhooks"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("exchange_id", sa.String(36), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("subject_sealed", sa.LargeBinary, nullable=True),
        sa.Column("subject_key_version", sa.String(32), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("delivered_ms", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_ms"])
    op.create_index("ix_outbox_exchange", "outbox", ["exchange_id"])
    op.create_table(
        "identity_providers",
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("jwks_url", sa.Text, nullable=True),
        sa.Column("jwks", sa.JSON, nullable=True),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("user_claim", sa.String(100), nullable=False),
        sa.Column("role_claim", sa.String(100), nullable=False),
        sa.Column("algorithms", sa.JSON, nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name="fk_identity_providers_party_id_parties"
        ),
        sa.PrimaryKeyConstraint("party_id", name="pk_identity_providers"),
    )


def downgrade() -> None:
    op.drop_table("identity_providers")
    op.drop_index("ix_outbox_exchange", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("webhooks")
