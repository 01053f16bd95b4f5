"""Console accounts are linked to one identity-provider issuer and subject.

The identity-provider sign-in matches an account on ``(oidc_issuer, oidc_subject)`` only
(``broker/console/oidc.py``); an account with neither cannot sign in through the provider. Both
are set by ``broker console link-oidc`` (``broker/cli/console.py``). One identity names one
account at most (a unique index).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("console_users") as batch:
        batch.add_column(sa.Column("oidc_issuer", sa.String(500), nullable=True))
        batch.add_column(sa.Column("oidc_subject", sa.String(255), nullable=True))
    op.create_index(
        "ix_console_users_oidc", "console_users", ["oidc_issuer", "oidc_subject"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_console_users_oidc", table_name="console_users")
    with op.batch_alter_table("console_users") as batch:
        batch.drop_column("oidc_subject")
        batch.drop_column("oidc_issuer")
