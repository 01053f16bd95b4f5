"""Tables of provider notifications (SQLAlchemy Core, shared metadata). Migration 0007 creates them.

- ``webhooks``: at most one registration per party: the URL an administrator registered (never
  taken from a request), the HMAC signing secret (Standard Webhooks ``whsec_`` form), an active
  flag. Every change is also an ``admin_events`` row.
- ``outbox``: one row per notification, written in the same transaction as the audit entry of the
  exchange that caused it. ``payload`` holds no identifier of a person in clear (the subject's
  keyed pseudonym only); the subject's identifier, when the provider may be sent it back, is kept
  sealed (AES-GCM) in ``subject_sealed`` and erased once the row is delivered or given up.
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

from broker.db.tables import metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

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
