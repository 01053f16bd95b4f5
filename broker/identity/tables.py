"""The identity providers parties registered (migration 0007 creates the table).

One provider per party: its issuer, where its keys are (a JWKS URL, or a key set held inline for
tests, demos and providers without a public endpoint), the claims that name the user and their
role, the audiences its partner systems have there, and whether the party requires ID tokens.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, String, Table, Text

from broker.db.tables import metadata

identity_providers = Table(
    "identity_providers",
    metadata,
    Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True),
    Column("issuer", Text, nullable=False),
    Column("jwks_url", Text, nullable=True),
    Column("jwks", JSON, nullable=True),
    Column("audiences", JSON, nullable=False),
    Column("user_claim", String(100), nullable=False),
    Column("role_claim", String(100), nullable=False),
    Column("algorithms", JSON, nullable=False),
    Column("required", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
