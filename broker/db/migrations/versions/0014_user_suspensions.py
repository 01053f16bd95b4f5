"""Verified users suspended by their party's governance officers, and the index that lists one
user's exchanges.

``user_suspensions``: one row per suspended user of a party (the identity provider's issuer and
the user's subject there), with the reason, who suspended and when. Reinstating deletes the row;
both acts are ``admin_events`` rows. ``ix_audit_entries_user`` lets governance list every
exchange one user of their party made (broker/audit/users.py) without walking the party's whole
log.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_suspensions",
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("suspended_by", sa.String(200), nullable=False),
        sa.Column("suspended_ms", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name="fk_user_suspensions_party_id_parties"
        ),
        sa.PrimaryKeyConstraint("party_id", "issuer", "subject", name="pk_user_suspensions"),
    )
    op.create_index("ix_audit_entries_user", "audit_entries", ["party_id", "user_id", "idx"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_user", table_name="audit_entries")
    op.drop_table("user_suspensions")
