"""Tables of provider notifications (shared metadata). Migration 0007 creates them.

- ``webhooks`` (a SQLModel table model): at most one registration per party: the URL an
  administrator registered (never taken from a request), the HMAC signing secret (Standard
  Webhooks ``whsec_`` form), an active flag. Every change is also an ``admin_events`` row.
- ``outbox`` (SQLAlchemy Core, on the exchange's hot path): one row per notification, written in
  the same transaction as the audit entry of the exchange that caused it. ``payload`` holds no
  identifier of a person in clear (the subject's keyed pseudonym only); the subject's
  identifier, when the provider may be sent it back, is kept sealed (AES-GCM) in
  ``subject_sealed`` and erased once the row is delivered or given up.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlmodel import Field

from broker.db.tables import TableModel, metadata, table_of


class WebhookRow(TableModel, table=True):
    __tablename__ = "webhooks"

    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True)
    )
    url: str = Field(sa_column=Column("url", Text, nullable=False))
    secret: str = Field(sa_column=Column("secret", String(200), nullable=False))
    active: bool = Field(sa_column=Column("active", Boolean, nullable=False))
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column("updated_ms", BigInteger, nullable=False))


webhooks = table_of(WebhookRow)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("exchange_id", String(36), nullable=False),
    Column("party_id", String(100), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("subject_sealed", LargeBinary, nullable=True),
    Column("subject_key_version", String(32), nullable=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("delivered_ms", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_ms"),
    Index("ix_outbox_exchange", "exchange_id"),
)
