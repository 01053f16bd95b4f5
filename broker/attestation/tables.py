"""The status of every attestation the broker signed (a SQLModel table model; migration 0015).

One row per attestation: ``idx`` is its index in the status list (allocated before it is
signed), ``jti`` and the exchange it was signed in, the dataset and the document's SHA-256 it
states (a document found altered revokes every attestation over that hash), the consent it was
given under (its withdrawal revokes it, in the withdrawal's transaction), the client it was
issued to, and when it was issued, expires and was revoked (and why). Never the subject.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String
from sqlmodel import Field

from broker.db.tables import TableModel, table_of


class AttestationStatusRow(TableModel, table=True):
    __tablename__ = "attestation_statuses"
    __table_args__ = (
        Index("ix_attestation_statuses_sha256", "document_sha256"),
        Index("ix_attestation_statuses_consent", "consent_id"),
    )

    idx: int | None = Field(
        default=None, sa_column=Column("idx", Integer, primary_key=True, autoincrement=True)
    )
    jti: str = Field(sa_column=Column("jti", String(36), nullable=False, unique=True))
    exchange_id: str = Field(sa_column=Column("exchange_id", String(36), nullable=False))
    dataset: str = Field(sa_column=Column("dataset", String(200), nullable=False))
    document_sha256: str = Field(sa_column=Column("document_sha256", String(64), nullable=False))
    consent_id: str | None = Field(sa_column=Column("consent_id", String(36), nullable=True))
    audience: str = Field(sa_column=Column("audience", String(100), nullable=False))
    status: str = Field(sa_column=Column("status", String(10), nullable=False))
    issued_ms: int = Field(sa_column=Column("issued_ms", BigInteger, nullable=False))
    expires_ms: int = Field(sa_column=Column("expires_ms", BigInteger, nullable=False))
    revoked_ms: int | None = Field(sa_column=Column("revoked_ms", BigInteger, nullable=True))
    revoked_reason: str | None = Field(
        sa_column=Column("revoked_reason", String(40), nullable=True)
    )


attestation_statuses = table_of(AttestationStatusRow)
