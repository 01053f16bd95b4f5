"""Tables of the consent area (migration 0006). Times are UTC milliseconds since the epoch.

- ``consents``: one row per consent record. The subject is held only as a keyed pseudonym with
  its key version, never the identifier in clear. Withdrawal sets ``status`` to ``inactive``
  and fills the ``withdrawn_*`` columns; rows are never deleted.
- ``preview_holds``: exchanges held for the citizen's preview (the 202 flow): status
  ``held`` -> ``approved`` | ``refused`` | ``expired``.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from broker.db.tables import metadata

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("agreement_id", String(100), nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("subject_type", String(40), nullable=False),
    Column("subject_pseudonym", String(64), nullable=False),
    Column("subject_key_version", String(32), nullable=False),
    Column("from_party", String(100), nullable=False),
    Column("to_party", String(100), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("datasets", JSON, nullable=False),
    Column("document_types", JSON, nullable=False),
    Column("period_start_ms", BigInteger, nullable=False),
    Column("period_end_ms", BigInteger, nullable=True),
    Column("collection_method", String(20), nullable=False),
    Column("recorded_by_name", String(200), nullable=False),
    Column("recorded_by_role", String(200), nullable=True),
    Column("recorder_party", String(100), nullable=False),
    Column("recorder_client", String(100), nullable=False),
    Column("recorded_at_ms", BigInteger, nullable=False),
    Column("withdrawn_at_ms", BigInteger, nullable=True),
    Column("withdrawn_by_client", String(100), nullable=True),
    Column("withdrawal_reason", Text, nullable=True),
    Index("ix_consents_subject", "subject_pseudonym"),
)

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
    Index("ix_preview_holds_subject", "subject_pseudonym"),
)
