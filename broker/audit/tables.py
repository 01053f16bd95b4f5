"""The audit log's tables (SQLAlchemy Core, on the shared metadata). Migration 0003 creates them.

- ``audit_entries``: one row per leaf. ``leaf`` holds the exact leaf bytes; every other column is
  either re-derived from the leaf by the verifier (search columns) or a personal value with its
  salt, checked against the leaf's commitment (redactable: both become NULL).
- ``audit_nodes``: the hash of every complete perfect subtree, keyed by post-order position
  (:func:`broker.core.merkle.node_position`): derived data that makes proofs O(log n).
- ``audit_head``: one row (id 1), the lock every appender takes, with the tree size and the
  compact range (the hashes needed to append and to compute the root).
- ``audit_checkpoints``: signed tree heads in C2SP signed-note form.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from broker.db.tables import metadata

# On SQLite an INTEGER PRIMARY KEY is the rowid (smaller, faster); BIGINT elsewhere.
Int64 = BigInteger().with_variant(Integer(), "sqlite")

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("idx", Int64, primary_key=True, autoincrement=False),
    Column("exchange_id", String(36), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("agreement_id", String(200), nullable=True),
    Column("party_id", String(100), nullable=True),
    Column("client_id", String(100), nullable=True),
    Column("dataset", String(200), nullable=True),
    Column("decision", String(20), nullable=True),
    Column("break_glass", Boolean, nullable=False),
    Column("subject_pseudonym", String(64), nullable=True),
    Column("subject_pseudonym_salt", LargeBinary, nullable=True),
    Column("user_id", Text, nullable=True),
    Column("user_id_salt", LargeBinary, nullable=True),
    Column("justification", Text, nullable=True),
    Column("justification_salt", LargeBinary, nullable=True),
    Column("case_reference", Text, nullable=True),
    Column("case_reference_salt", LargeBinary, nullable=True),
    Column("record_salt", LargeBinary, nullable=True),
    Column("leaf", LargeBinary, nullable=False),
    Index("ix_audit_entries_at_ms", "at_ms"),
    Index("ix_audit_entries_agreement", "agreement_id", "idx"),
    Index("ix_audit_entries_party", "party_id", "idx"),
    Index("ix_audit_entries_client", "client_id", "idx"),
    Index("ix_audit_entries_dataset", "dataset", "idx"),
    Index("ix_audit_entries_subject", "subject_pseudonym", "idx"),
    # Created by migration 0005 for the governance console: agreement usage and monthly
    # reports read only the first (covering); the break-glass queue walks the second.
    Index("ix_console_usage", "agreement_id", "at_ms", "kind", "decision", "break_glass"),
    Index("ix_console_break_glass", "break_glass", "idx"),
    # Created by migration 0014: every exchange one user of a party made (broker/audit/users.py).
    Index("ix_audit_entries_user", "party_id", "user_id", "idx"),
)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("pos", Int64, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("compact", LargeBinary, nullable=False),
    Column("checkpoint_size", BigInteger, nullable=False),
    Column("checkpoint_ms", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", Int64, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
)
