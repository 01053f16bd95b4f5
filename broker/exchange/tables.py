"""Tables of the exchange pipeline: idempotency keys and verification answers."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

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

# No longer written (the per-client, per-subject count it held is replaced by the counts per
# record below); kept so that an upgrade loses no row
# (broker/db/migrations/versions/0010_verification_by_record.py).
verification_attempts = Table(
    "verification_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(100), nullable=False),
    Column("subject_pseudonym", String(100), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_verification_attempts_lookup", "client_id", "subject_pseudonym", "at_ms"),
)

# One row per verification answer given: the limits per record (across every party and flow)
# and per party, flow and record hold across processes. The record is the pseudonym of its stable
# key at the source (adapters/bindings.py), never the key itself.
verification_answers = Table(
    "verification_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(200), nullable=False),
    Column("record_pseudonym", String(100), nullable=False),
    Column("party_id", String(100), nullable=False),
    Column("agreement_id", String(200), nullable=False),
    Column("flow_id", String(200), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_verification_answers_record", "dataset", "record_pseudonym", "at_ms"),
    Index("ix_verification_answers_at_ms", "at_ms"),
)

# One row per impact run of a draft agreement (broker/exchange/impact_jobs.py): who asked, for
# which draft, over how many days, and the report (figures and examples, no personal value).
impact_jobs = Table(
    "impact_jobs",
    metadata,
    Column("id", String(36), nullable=False),
    Column("party_id", String(100), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("party_wide", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("draft_id", String(200), nullable=False),
    Column("draft_version", Integer, nullable=False),
    Column("draft_digest", String(80), nullable=False),
    Column("days", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("id", name="pk_impact_jobs"),
    Index("ix_impact_jobs_party", "party_id", "created_ms"),
)
