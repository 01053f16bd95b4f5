"""Identity providers keyed by party and issuer, with a role map.

One provider may serve several parties (NHS CIS2 is one national issuer for every trust and GP
practice), and a party may register several: ``identity_providers`` is keyed by
``(party_id, issuer)`` instead of ``party_id``. ``role_format`` says where a provider puts roles
(``claim``: one claim; ``cis2``: the selected entry of ``nhsid_nrbac_roles``) and ``role_map``
maps its values to agreement roles (broker/identity/roles.py). Existing rows keep working as
they did: ``claim`` with an empty map takes the claim's values as they are.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_providers") as batch:
        batch.add_column(
            sa.Column("role_format", sa.String(20), nullable=False, server_default="claim")
        )
        batch.add_column(sa.Column("role_map", sa.JSON, nullable=False, server_default="{}"))
        batch.drop_constraint("pk_identity_providers", type_="primary")
        batch.create_primary_key("pk_identity_providers", ["party_id", "issuer"])
    # The default only fills existing rows: the store writes every row's map (and PostgreSQL
    # cannot compare JSON defaults when checking the schema).
    with op.batch_alter_table("identity_providers") as batch:
        batch.alter_column("role_map", existing_type=sa.JSON, server_default=None)


def downgrade() -> None:
    # Keeps one registration per party (the first issuer) for the older key.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT party_id, issuer FROM identity_providers ORDER BY party_id, issuer")
    ).all()
    seen: set[str] = set()
    for party_id, issuer in rows:
        if party_id in seen:
            conn.execute(
                sa.text("DELETE FROM identity_providers WHERE party_id = :p AND issuer = :i"),
                {"p": party_id, "i": issuer},
            )
        seen.add(party_id)
    with op.batch_alter_table("identity_providers") as batch:
        batch.drop_constraint("pk_identity_providers", type_="primary")
        batch.create_primary_key("pk_identity_providers", ["party_id"])
        batch.drop_column("role_map")
        batch.drop_column("role_format")
