"""Table definitions (SQLAlchemy Core). Alembic migrations create them; tests compare the two."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

parties = Table(
    "parties",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("ods_code", String(20), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("party_id", String(100), ForeignKey("parties.id"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("jwks", JSON, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_clients_party_id", "party_id"),
)

# A client assertion's jti, kept until the assertion would have expired anyway.
assertion_jtis = Table(
    "assertion_jtis",
    metadata,
    Column("client_id", String(100), nullable=False),
    Column("jti", String(200), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("client_id", "jti"),
    Index("ix_assertion_jtis_expires_at", "expires_at"),
)

# Every change to the registry (parties, clients, keys, trust store) by an administrator.
admin_events = Table(
    "admin_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", JSON, nullable=False),
)
