"""Verification answers are counted per record at the source, not per client and subject.

``verification_attempts`` counted questions per client and subject identifier, so another party,
or the same record asked by another of its identifiers, started a fresh count. The broker now
counts in ``verification_answers``: one row per answer, keyed by the pseudonym of the record's
stable key and the dataset, with the party, agreement and flow that asked
(broker/exchange/limits.py). ``verification_attempts`` is no longer written and is kept as it is
(an upgrade loses no row; tests/db/test_upgrade.py): its rows name no record, so they cannot be
carried over.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("record_pseudonym", sa.String(100), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("flow_id", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_verification_answers_record",
        "verification_answers",
        ["dataset", "record_pseudonym", "at_ms"],
    )
    op.create_index("ix_verification_answers_at_ms", "verification_answers", ["at_ms"])


def downgrade() -> None:
    op.drop_index("ix_verification_answers_at_ms", table_name="verification_answers")
    op.drop_index("ix_verification_answers_record", table_name="verification_answers")
    op.drop_table("verification_answers")
