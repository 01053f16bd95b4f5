"""Tables of the exchange pipeline: idempotency keys and verification attempts."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table

from broker.db.tables import metadata

# A retried request with the same Idempotency-Key gets the first answer again, unlogged.
# Rows hold the answer only briefly (see ExchangeSettings) and are purged after that.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", JSON, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("client_id", "key"),
    Index("ix_idempotency_keys_created_ms", "created_ms"),
)

# One row per verification request that reached the decision: the per-client, per-subject limit
# holds across processes. The subject is a pseudonym, never the identifier.
verification_attempts = Table(
    "verification_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(100), nullable=False),
    Column("subject_pseudonym", String(100), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_verification_attempts_lookup", "client_id", "subject_pseudonym", "at_ms"),
)
