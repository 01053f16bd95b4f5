"""The console's tables (SQLAlchemy Core, shared metadata). Migration 0005 creates them.

- ``console_users``: local officer accounts (argon2id hashes), with the login throttle state.
- ``console_sessions``: server-side sessions; only the SHA-256 of the cookie value is stored.
- ``console_reviews``: break-glass reviews (appropriate / referred, with a note).
- ``console_verifications``: full log verifications started from the console, with results.
- ``console_oidc_logins``: OIDC sign-ins under way (state, nonce, PKCE verifier), used once.

Migration 0005 also adds two indexes to ``audit_entries`` (agreement usage by time, and the
break-glass queue) so that the console's aggregate pages stay fast on large logs.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, Text

from broker.db.tables import metadata

console_users = Table(
    "console_users",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("party_id", String(100), nullable=False),
    Column("role", String(30), nullable=False),
    Column("display_name", String(200), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until_ms", BigInteger, nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("seen_ms", BigInteger, nullable=False),
)

console_reviews = Table(
    "console_reviews",
    metadata,
    Column("exchange_id", String(36), primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("reviewer", String(100), nullable=False),
    Column("reviewer_party", String(100), nullable=False),
    Column("reviewed_ms", BigInteger, nullable=False),
)

console_verifications = Table(
    "console_verifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_by", String(100), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("entries_checked", BigInteger, nullable=True),
    Column("result", Text, nullable=True),
)

console_oidc_logins = Table(
    "console_oidc_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("nonce", String(100), nullable=False),
    Column("code_verifier", String(200), nullable=False),
    Column("next_path", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
