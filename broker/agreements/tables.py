"""Tables of the agreements area: the party-key trust store, recorded revocations, and the
highest version of each agreement ever seen (SQLModel table models, storage only). Created by
migration 0002."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field

from broker.db.tables import TableModel, table_of


class PartyKeyRow(TableModel, table=True):
    """Public keys of parties, imported from JWKS files by an administrator
    (``parties import-keys``)."""

    __tablename__ = "party_keys"
    __table_args__ = (Index("ix_party_keys_party_id", "party_id"),)

    kid: str = Field(sa_column=Column("kid", String(100), primary_key=True))  # RFC 7638 thumbprint
    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), nullable=False)
    )
    jwk: dict[str, Any] = Field(sa_column=Column("jwk", JSON, nullable=False))
    source: str = Field(sa_column=Column("source", String(500), nullable=False))
    imported_at: datetime = Field(
        sa_column=Column("imported_at", DateTime(timezone=True), nullable=False)
    )
    imported_by: str = Field(sa_column=Column("imported_by", String(200), nullable=False))


class AgreementRevocationRow(TableModel, table=True):
    """Every verified revocation ever seen. Never deleted: removing the file does not restore
    access."""

    __tablename__ = "agreement_revocations"
    __table_args__ = (Index("ix_agreement_revocations_agreement_id", "agreement_id"),)

    digest: str = Field(sa_column=Column("digest", String(80), primary_key=True))
    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), nullable=False))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    revoked_by: str = Field(sa_column=Column("revoked_by", String(100), nullable=False))
    reason: str = Field(sa_column=Column("reason", Text, nullable=False))
    revoked_at: datetime = Field(
        sa_column=Column("revoked_at", DateTime(timezone=True), nullable=False)
    )
    document: dict[str, Any] = Field(sa_column=Column("document", JSON, nullable=False))
    signature: str = Field(sa_column=Column("signature", Text, nullable=False))
    first_seen_at: datetime = Field(
        sa_column=Column("first_seen_at", DateTime(timezone=True), nullable=False)
    )


class AgreementVersionRow(TableModel, table=True):
    """The highest fully signed version of each agreement ever seen: an older version never
    comes back."""

    __tablename__ = "agreement_versions"

    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), primary_key=True))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    digest: str = Field(sa_column=Column("digest", String(80), nullable=False))
    # The signed canonical content, to name changes.
    content: dict[str, Any] | None = Field(sa_column=Column("content", JSON, nullable=True))
    first_seen_at: datetime = Field(
        sa_column=Column("first_seen_at", DateTime(timezone=True), nullable=False)
    )


party_keys = table_of(PartyKeyRow)
agreement_revocations = table_of(AgreementRevocationRow)
agreement_versions = table_of(AgreementVersionRow)
