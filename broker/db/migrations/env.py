"""Alembic environment: runs against the connection the broker hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from broker.db.tables import metadata

config = context.config
connection: Connection | None = config.attributes.get("connection")
if connection is None:  # pragma: no cover - the broker always passes a connection
    raise RuntimeError("run migrations through broker.db.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
