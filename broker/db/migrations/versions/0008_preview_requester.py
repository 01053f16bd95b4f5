"""Held exchanges record the system and the user that asked (the citizen's approval is theirs).

Both columns are nullable: holds made before this revision have neither and are never released
(``broker/exchange/preview_gate.py`` refuses them; the requester asks again).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("preview_holds") as batch:
        batch.add_column(sa.Column("requester_client", sa.String(100), nullable=True))
        batch.add_column(sa.Column("requester_user", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("preview_holds") as batch:
        batch.drop_column("requester_user")
        batch.drop_column("requester_client")
