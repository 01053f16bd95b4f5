"""Tamper-evident audit log: entries, Merkle nodes, head (append lock), signed checkpoints.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("idx", Int64, primary_key=True, autoincrement=False),
        sa.Column("exchange_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=True),
        sa.Column("party_id", sa.String(100), nullable=True),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("dataset", sa.String(200), nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("break_glass", sa.Boolean, nullable=False),
        sa.Column("subject_pseudonym", sa.String(64), nullable=True),
        sa.Column("subject_pseudonym_salt", sa.LargeBinary, nullable=True),
        sa.Column("user_id", sa.Text, nullable=True),
        sa.Column("user_id_salt", sa.LargeBinary, nullable=True),
        sa.Column("justification", sa.Text, nullable=True),
        sa.Column("justification_salt", sa.LargeBinary, nullable=True),
        sa.Column("case_reference", sa.Text, nullable=True),
        sa.Column("case_reference_salt", sa.LargeBinary, nullable=True),
        sa.Column("record_salt", sa.LargeBinary, nullable=True),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_audit_entries"),
        sa.UniqueConstraint("exchange_id", name="uq_audit_entries_exchange_id"),
    )
    op.create_index("ix_audit_entries_at_ms", "audit_entries", ["at_ms"])
    op.create_index("ix_audit_entries_agreement", "audit_entries", ["agreement_id", "idx"])
    op.create_index("ix_audit_entries_party", "audit_entries", ["party_id", "idx"])
    op.create_index("ix_audit_entries_client", "audit_entries", ["client_id", "idx"])
    op.create_index("ix_audit_entries_dataset", "audit_entries", ["dataset", "idx"])
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject_pseudonym", "idx"])
    op.create_table(
        "audit_nodes",
        sa.Column("pos", Int64, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("pos", name="pk_audit_nodes"),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("compact", sa.LargeBinary, nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger, nullable=False),
        sa.Column("checkpoint_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(
        head,
        [{"id": 1, "size": 0, "compact": b"", "checkpoint_size": 0, "checkpoint_ms": 0}],
    )  # fmt: skip
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", Int64, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_audit_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    op.drop_table("audit_nodes")
    for name in ("subject", "dataset", "client", "party", "agreement", "at_ms"):
        op.drop_index(f"ix_audit_entries_{name}", table_name="audit_entries")
    op.drop_table("audit_entries")
