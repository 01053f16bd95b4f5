"""Tables of the agreements area: the party-key trust store, recorded revocations, and the
highest version of each agreement ever seen. Created by migration 0002."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from broker.db.tables import metadata

# Public keys of parties, imported from JWKS files by an administrator (``parties import-keys``).
party_keys = Table(
    "party_keys",
    metadata,
    Column("kid", String(100), primary_key=True),  # RFC 7638 thumbprint
    Column("party_id", String(100), ForeignKey("parties.id"), nullable=False),
    Column("jwk", JSON, nullable=False),
    Column("source", String(500), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", String(200), nullable=False),
    Index("ix_party_keys_party_id", "party_id"),
)

# Every verified revocation ever seen. Never deleted: removing the file does not restore access.
agreement_revocations = Table(
    "agreement_revocations",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("agreement_id", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("revoked_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
    Column("signature", Text, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_agreement_revocations_agreement_id", "agreement_id"),
)

# The highest fully signed version of each agreement ever seen: an older version never comes back.
agreement_versions = Table(
    "agreement_versions",
    metadata,
    Column("agreement_id", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("content", JSON, nullable=True),  # the signed canonical content, to name changes
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
)
