"""Subject access requests handled at the console: received and due dates, pseudonyms only.

``console_subject_access``: one row per request an officer opened (``broker.console.tables``).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_subject_access",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_pseudonyms", sa.Text(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_console_subject_access"),
    )
    op.create_index(
        "ix_console_subject_access_party", "console_subject_access", ["party_id", "closed_ms"]
    )


def downgrade() -> None:
    op.drop_index("ix_console_subject_access_party", table_name="console_subject_access")
    op.drop_table("console_subject_access")
