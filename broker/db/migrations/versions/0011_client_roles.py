"""Systems bound to roles: ``client_roles`` lists the roles each client may act for.

A row binds a client to a role for any agreement (``agreement_id`` null), or narrows it to one
agreement, or to one flow of it. A client with no row may act for no role: the upgrade adds
none, so every system must be bound by its party's administrator (``broker clients bind``)
before it can ask under an agreement again; ``broker clients list`` flags unbound systems.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_roles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("agreement_id", sa.String(100), nullable=True),
        sa.Column("flow_id", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_roles_client_id_clients"
        ),
    )
    op.create_index("ix_client_roles_client_id", "client_roles", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_client_roles_client_id", table_name="client_roles")
    op.drop_table("client_roles")
