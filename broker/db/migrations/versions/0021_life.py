"""Agreements written through the API: drafts, their revisions, comments and signatures; the
approvals of a party's first signing key.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agreement_drafts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("previous_digest", sa.String(80), nullable=True),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("drafter", sa.String(200), nullable=False),
        sa.Column("drafter_party", sa.String(100), nullable=False),
        sa.Column("dpo_view", sa.Text(), nullable=True),
        sa.Column("dpia_reference", sa.String(200), nullable=True),
        sa.Column("dpo_recorded_by", sa.String(200), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_drafts"),
    )
    op.create_index("ix_agreement_drafts_agreement_id", "agreement_drafts", ["agreement_id"])
    op.create_table(
        "agreement_draft_revisions",
        sa.Column("draft_id", sa.String(40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
        _at("written_at"),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["agreement_drafts.id"],
            name="fk_agreement_draft_revisions_draft_id_agreement_drafts",
        ),
        sa.PrimaryKeyConstraint("draft_id", "revision", name="pk_agreement_draft_revisions"),
    )
    op.create_table(
        "agreement_draft_comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("draft_id", sa.String(40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _at("written_at"),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["agreement_drafts.id"],
            name="fk_agreement_draft_comments_draft_id_agreement_drafts",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_draft_comments"),
    )
    op.create_index(
        "ix_agreement_draft_comments_draft_id", "agreement_draft_comments", ["draft_id"]
    )
    op.create_table(
        "agreement_draft_signatures",
        sa.Column("draft_id", sa.String(40), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("statement", sa.JSON(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("kid", sa.String(100), nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        _at("signed_at"),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["agreement_drafts.id"],
            name="fk_agreement_draft_signatures_draft_id_agreement_drafts",
        ),
        sa.PrimaryKeyConstraint(
            "draft_id", "party_id", "action", "digest", name="pk_agreement_draft_signatures"
        ),
    )
    op.create_table(
        "party_key_approvals",
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("kid", sa.String(100), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        _at("approved_at"),
        sa.PrimaryKeyConstraint("party_id", "kid", "approver", name="pk_party_key_approvals"),
    )


def downgrade() -> None:
    op.drop_table("party_key_approvals")
    op.drop_table("agreement_draft_signatures")
    op.drop_index("ix_agreement_draft_comments_draft_id", table_name="agreement_draft_comments")
    op.drop_table("agreement_draft_comments")
    op.drop_table("agreement_draft_revisions")
    op.drop_index("ix_agreement_drafts_agreement_id", table_name="agreement_drafts")
    op.drop_table("agreement_drafts")
