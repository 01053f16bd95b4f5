"""A consent given before it was recorded (on paper): when it was given and where its evidence is.

``consents.given_at_ms``: when the citizen gave it, set only when before it was recorded (NULL:
given when recorded, as every consent recorded before this migration). ``evidence_reference``:
the reference of the evidence kept for such a consent (a signed form's number).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("given_at_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("evidence_reference", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("evidence_reference")
        batch.drop_column("given_at_ms")
