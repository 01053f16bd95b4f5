"""The console's tables (shared metadata). Migration 0005 creates them. Accounts and sessions
are SQLModel table models (storage only); the other tables are SQLAlchemy Core.

- ``console_users``: local officer accounts (argon2id hashes), with the login throttle state and
  the one identity-provider issuer and subject linked to each (migration 0009).
- ``console_sessions``: server-side sessions; only the SHA-256 of the cookie value is stored.
- ``console_reviews``: break-glass reviews (appropriate / referred, with a note), defined in
  :mod:`broker.audit.reviews` beside their deadlines and imported here.
- ``console_verifications``: full log verifications started from the console, with results.
- ``console_oidc_logins``: OIDC sign-ins under way (state, nonce, PKCE verifier), used once.
- ``console_subject_access``: subject access requests an officer opened (migration 0019): the
  subject's pseudonyms only (never the identifier), the date received and the date due.

Migration 0005 also adds two indexes to ``audit_entries`` (agreement usage by time, and the
break-glass queue) so that the console's aggregate pages stay fast on large logs.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, String, Table, Text
from sqlmodel import Field

from broker.audit.reviews import console_reviews as console_reviews
from broker.db.tables import TableModel, metadata, table_of


class ConsoleUserRow(TableModel, table=True):
    __tablename__ = "console_users"
    __table_args__ = (Index("ix_console_users_oidc", "oidc_issuer", "oidc_subject", unique=True),)

    username: str = Field(sa_column=Column("username", String(100), primary_key=True))
    party_id: str = Field(sa_column=Column("party_id", String(100), nullable=False))
    role: str = Field(sa_column=Column("role", String(30), nullable=False))
    display_name: str | None = Field(sa_column=Column("display_name", String(200), nullable=True))
    password_hash: str = Field(sa_column=Column("password_hash", Text, nullable=False))
    active: bool = Field(sa_column=Column("active", Boolean, nullable=False))
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))
    failed_logins: int = Field(sa_column=Column("failed_logins", Integer, nullable=False))
    locked_until_ms: int = Field(sa_column=Column("locked_until_ms", BigInteger, nullable=False))
    oidc_issuer: str | None = Field(
        default=None, sa_column=Column("oidc_issuer", String(500), nullable=True)
    )
    oidc_subject: str | None = Field(
        default=None, sa_column=Column("oidc_subject", String(255), nullable=True)
    )


class ConsoleSessionRow(TableModel, table=True):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_username", "username"),)

    id_hash: str = Field(sa_column=Column("id_hash", String(64), primary_key=True))
    username: str = Field(sa_column=Column("username", String(100), nullable=False))
    csrf: str = Field(sa_column=Column("csrf", String(64), nullable=False))
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))
    seen_ms: int = Field(sa_column=Column("seen_ms", BigInteger, nullable=False))


console_users = table_of(ConsoleUserRow)
console_sessions = table_of(ConsoleSessionRow)

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

console_subject_access = Table(
    "console_subject_access",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("party_id", String(100), nullable=False),
    Column("subject_type", String(40), nullable=False),
    # JSON list: the subject's pseudonym under every key version, newest last.
    Column("subject_pseudonyms", Text, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("opened_by", String(100), nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("closed_by", String(100), nullable=True),
    Column("closed_ms", BigInteger, nullable=True),
    Index("ix_console_subject_access_party", "party_id", "closed_ms"),
)
