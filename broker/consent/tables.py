"""Tables of the consent area (migration 0006). Times are UTC milliseconds since the epoch.

- ``consents`` (a SQLModel table model, storage only): one row per consent record. The subject
  is held only as a keyed pseudonym with its key version, never the identifier in clear.
  Withdrawal sets ``status`` to ``inactive`` and fills the ``withdrawn_*`` columns; rows are
  never deleted. ``given_at_ms`` and ``evidence_reference`` (migration 0016): a consent given
  before it was recorded, on paper.
- ``preview_holds`` (SQLAlchemy Core, on the exchange path): exchanges held for the citizen's
  preview (the 202 flow): status ``held`` -> ``approved`` | ``refused`` | ``expired``.
  ``requester_client`` and ``requester_user`` (migration 0008) name the system and the user that
  made the held request: an approval is released to them only. Holds made before 0008 have NULL
  there and are never released (see ``broker/exchange/preview_gate.py``).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text
from sqlmodel import Field

from broker.db.tables import TableModel, metadata, table_of


class ConsentRow(TableModel, table=True):
    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_subject", "subject_pseudonym"),)

    id: str = Field(sa_column=Column("id", String(36), primary_key=True))
    status: str = Field(sa_column=Column("status", String(10), nullable=False))
    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), nullable=False))
    agreement_version: int = Field(sa_column=Column("agreement_version", Integer, nullable=False))
    subject_type: str = Field(sa_column=Column("subject_type", String(40), nullable=False))
    subject_pseudonym: str = Field(
        sa_column=Column("subject_pseudonym", String(64), nullable=False)
    )
    subject_key_version: str = Field(
        sa_column=Column("subject_key_version", String(32), nullable=False)
    )
    from_party: str = Field(sa_column=Column("from_party", String(100), nullable=False))
    to_party: str = Field(sa_column=Column("to_party", String(100), nullable=False))
    purpose: str = Field(sa_column=Column("purpose", String(100), nullable=False))
    datasets: list[str] = Field(sa_column=Column("datasets", JSON, nullable=False))
    document_types: list[str] = Field(sa_column=Column("document_types", JSON, nullable=False))
    period_start_ms: int = Field(sa_column=Column("period_start_ms", BigInteger, nullable=False))
    period_end_ms: int | None = Field(sa_column=Column("period_end_ms", BigInteger, nullable=True))
    collection_method: str = Field(
        sa_column=Column("collection_method", String(20), nullable=False)
    )
    recorded_by_name: str = Field(sa_column=Column("recorded_by_name", String(200), nullable=False))
    recorded_by_role: str | None = Field(
        sa_column=Column("recorded_by_role", String(200), nullable=True)
    )
    recorder_party: str = Field(sa_column=Column("recorder_party", String(100), nullable=False))
    recorder_client: str = Field(sa_column=Column("recorder_client", String(100), nullable=False))
    recorded_at_ms: int = Field(sa_column=Column("recorded_at_ms", BigInteger, nullable=False))
    withdrawn_at_ms: int | None = Field(
        sa_column=Column("withdrawn_at_ms", BigInteger, nullable=True)
    )
    withdrawn_by_client: str | None = Field(
        sa_column=Column("withdrawn_by_client", String(100), nullable=True)
    )
    withdrawal_reason: str | None = Field(
        sa_column=Column("withdrawal_reason", Text, nullable=True)
    )
    given_at_ms: int | None = Field(sa_column=Column("given_at_ms", BigInteger, nullable=True))
    evidence_reference: str | None = Field(
        sa_column=Column("evidence_reference", String(200), nullable=True)
    )


consents = table_of(ConsentRow)

preview_holds = Table(
    "preview_holds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("exchange_id", String(36), nullable=False, unique=True),
    Column("status", String(10), nullable=False),
    Column("subject_pseudonym", String(64), nullable=False),
    Column("subject_key_version", String(32), nullable=False),
    Column("requester_party", String(100), nullable=False),
    Column("agreement_id", String(100), nullable=False),
    Column("dataset", String(200), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("decided_at_ms", BigInteger, nullable=True),
    Column("decided_by_client", String(100), nullable=True),
    Column("requester_client", String(100), nullable=True),
    Column("requester_user", Text, nullable=True),
    Index("ix_preview_holds_subject", "subject_pseudonym"),
)
