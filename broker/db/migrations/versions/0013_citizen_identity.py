"""Citizen identity providers and the links of citizens' identities to their identifiers.

``citizen_identity_providers``: the providers (NHS login, GOV.UK One Login) whose ID tokens a
party's citizen-facing system exchanges at ``POST /oauth2/token`` for a token naming the citizen
(broker/identity/citizen_exchange.py). ``citizen_links``: the first such exchange records which
personal identifier the citizen's identity was verified to hold (its pseudonym, the claim and
the assurance that proved it).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_identity_providers",
        sa.Column("party_id", sa.String(100), sa.ForeignKey("parties.id"), primary_key=True),
        sa.Column("issuer", sa.String(500), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jwks_url", sa.Text, nullable=True),
        sa.Column("jwks", sa.JSON, nullable=True),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("algorithms", sa.JSON, nullable=False),
        sa.Column("identifier_claim", sa.String(100), nullable=False),
        sa.Column("identifier_type", sa.String(40), nullable=False),
        sa.Column("assurance_claim", sa.String(100), nullable=False),
        sa.Column("assurance_values", sa.JSON, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "citizen_links",
        sa.Column("issuer", sa.String(500), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("identifier_type", sa.String(40), primary_key=True),
        sa.Column("identifier_pseudonym", sa.String(100), nullable=False),
        sa.Column("key_version", sa.String(32), nullable=False),
        sa.Column("party_id", sa.String(100), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("verified_by", sa.String(100), nullable=False),
        sa.Column("assurance", sa.String(100), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("citizen_links")
    op.drop_table("citizen_identity_providers")
