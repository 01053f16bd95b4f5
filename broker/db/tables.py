"""Table definitions on one MetaData: SQLModel table models for the registry-type tables, SQLAlchemy
Core tables for the hot paths. Alembic migrations create them; tests compare the two.

Table models are storage only (SQLModel does not validate ``table=True`` models): values from
outside are checked by a non-table model (an API request model, or the store's own checks)
before a row is built. Each table model's Core table is also exported under the table's name
(``parties``, ``clients``, ...) for the Core statements of stores and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class TableModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the broker's SQLModel table models: their tables go on ``metadata``."""


def table_of(model: type[TableModel]) -> Table:
    """The Core table of a table model (for Core statements on hot paths)."""
    table = model.__dict__["__table__"]
    assert isinstance(table, Table)
    return table


class PartyRow(TableModel, table=True):
    __tablename__ = "parties"
    # An ODS code belongs to one party (migration 0017).
    __table_args__ = (Index("ix_parties_ods_code", "ods_code", unique=True),)

    id: str = Field(sa_column=Column("id", String(100), primary_key=True))
    name: str = Field(sa_column=Column("name", String(300), nullable=False))
    kind: str = Field(sa_column=Column("kind", String(20), nullable=False))
    ods_code: str | None = Field(sa_column=Column("ods_code", String(20), nullable=True))
    created_at: datetime = Field(
        sa_column=Column("created_at", DateTime(timezone=True), nullable=False)
    )


class ClientRow(TableModel, table=True):
    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_party_id", "party_id"),)

    id: str = Field(sa_column=Column("id", String(100), primary_key=True))
    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), nullable=False)
    )
    name: str = Field(sa_column=Column("name", String(300), nullable=False))
    jwks: dict[str, Any] = Field(sa_column=Column("jwks", JSON, nullable=False))
    scopes: list[str] = Field(sa_column=Column("scopes", JSON, nullable=False))
    status: str = Field(sa_column=Column("status", String(20), nullable=False))
    created_at: datetime = Field(
        sa_column=Column("created_at", DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        sa_column=Column("updated_at", DateTime(timezone=True), nullable=False)
    )


class ClientRoleRow(TableModel, table=True):
    """A role a client may act for (for any agreement, or narrowed to one agreement or flow).
    A client with no row acts for no role."""

    __tablename__ = "client_roles"
    __table_args__ = (Index("ix_client_roles_client_id", "client_id"),)

    id: int | None = Field(
        default=None, sa_column=Column("id", Integer, primary_key=True, autoincrement=True)
    )
    client_id: str = Field(
        sa_column=Column("client_id", String(100), ForeignKey("clients.id"), nullable=False)
    )
    role: str = Field(sa_column=Column("role", String(100), nullable=False))
    agreement_id: str | None = Field(sa_column=Column("agreement_id", String(100), nullable=True))
    flow_id: str | None = Field(sa_column=Column("flow_id", String(100), nullable=True))
    created_at: datetime = Field(
        sa_column=Column("created_at", DateTime(timezone=True), nullable=False)
    )


parties = table_of(PartyRow)
clients = table_of(ClientRow)
client_roles = table_of(ClientRoleRow)

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


class AdminEventRow(TableModel, table=True):
    """Every administrative act (parties, clients, keys, identity providers, webhooks, role
    bindings, suspensions, console accounts), with the audit log entry that records it
    (``entry_id``; written together by ``broker.audit.admin.log_admin_event``)."""

    __tablename__ = "admin_events"
    __table_args__ = (Index("ix_admin_events_entry_id", "entry_id", unique=True),)

    id: int | None = Field(
        default=None, sa_column=Column("id", Integer, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=Column("at", DateTime(timezone=True), nullable=False))
    actor: str = Field(sa_column=Column("actor", String(200), nullable=False))
    action: str = Field(sa_column=Column("action", String(100), nullable=False))
    target: str = Field(sa_column=Column("target", String(200), nullable=False))
    details: dict[str, Any] = Field(sa_column=Column("details", JSON, nullable=False))
    entry_id: str | None = Field(
        default=None, sa_column=Column("entry_id", String(36), nullable=True)
    )
    """The audit log entry of the act (None only for acts recorded before migration 0017)."""


admin_events = table_of(AdminEventRow)


class LeaseRow(TableModel, table=True):
    """Who runs a periodic job (checkpoints, outbox delivery) across every instance, until when
    (migration 0018 creates it; ``broker.db.leases`` takes and renews it)."""

    __tablename__ = "leases"

    name: str = Field(sa_column=Column("name", String(100), primary_key=True))
    holder: str = Field(sa_column=Column("holder", String(200), nullable=False))
    expires_ms: int = Field(sa_column=Column("expires_ms", BigInteger, nullable=False))


leases = table_of(LeaseRow)
