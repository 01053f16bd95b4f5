"""Impact runs of draft agreements: ``impact_jobs`` (broker/exchange/impact_jobs.py).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impact_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("party_wide", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("draft_id", sa.String(200), nullable=False),
        sa.Column("draft_version", sa.Integer(), nullable=False),
        sa.Column("draft_digest", sa.String(80), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_impact_jobs"),
    )
    op.create_index("ix_impact_jobs_party", "impact_jobs", ["party_id", "created_ms"])


def downgrade() -> None:
    op.drop_index("ix_impact_jobs_party", table_name="impact_jobs")
    op.drop_table("impact_jobs")
