"""SQL adapter (council line-of-business databases): SQLAlchemy Core, read-only.

Statements are built from the binding (``options.table``, mapped column names, the identifier
column) with the subject as a bound parameter; no SQL text comes from strings. Binding::

    sources:   {name: {kind: sql, endpoint: "sqlite:///path.db" | "postgresql+psycopg://...",
                       options: {schema: optional}}}
    datasets:  {id: {options: {table: view_or_table, types: {field: date|boolean|...}},
                     fields: {catalogue.name: column}, identifiers: {nhs_number: column}}}

SQLite files are opened read-only (``mode=ro``); PostgreSQL sessions are
``default_transaction_read_only`` with a ``statement_timeout`` equal to the read timeout. The
table must have at most one row per subject: two rows are :class:`MultipleMatches`.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, String, bindparam, column, create_engine, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from adapters.base import BaseAdapter, guard_identity, guard_single
from adapters.bindings import DatasetBinding, SourceConfig
from adapters.errors import (
    BindingError,
    SourceBadData,
    SourceTimeout,
    SourceUnavailable,
    SubjectNotFound,
)
from adapters.resilience import Clock
from adapters.values import to_catalogue
from broker.core.identifiers import SubjectId


class SqlAdapter(BaseAdapter):
    kind = "sql"

    def __init__(self, source: SourceConfig, *, clock: Clock = time.monotonic) -> None:
        super().__init__(source, clock=clock)
        self._engine: Engine | None = None

    def _engine_now(self) -> Engine:
        if self._engine is None:
            self._engine = build_read_only_engine(self.source)
        return self._engine

    async def read(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]:
        where = {"dataset": binding.dataset, "source": self.source.name}
        name = binding.options.get("table")
        if not isinstance(name, str) or not name:
            raise BindingError(f"dataset {binding.dataset}: options.table is required")
        id_column = binding.identifiers[subject.type]
        columns = tuple(dict.fromkeys([id_column, *(binding.source_path(f) for f in fields)]))
        schema = self.source.options.get("schema")
        statement = _select_one(name, schema if isinstance(schema, str) else None, columns)
        parameters = {_SUBJECT: subject.value}

        def run() -> list[dict[str, Any]]:
            with self._engine_now().connect() as conn:
                return [dict(row._mapping) for row in conn.execute(statement, parameters)]

        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(run),
                self.source.timeouts.connect_seconds + self.source.timeouts.read_seconds,
            )
        except TimeoutError as e:
            raise SourceTimeout(f"source {self.source.name} timed out", **where) from e
        except OperationalError as e:
            if "timeout" in str(e.orig).lower() or "canceling statement" in str(e.orig):
                raise SourceTimeout(f"source {self.source.name} timed out", **where) from e
            raise SourceUnavailable(
                f"source {self.source.name} unavailable: {type(e.orig).__name__}", **where
            ) from e
        except (DBAPIError, SQLAlchemyError, sqlite3.Error) as e:
            raise SourceBadData(
                f"source {self.source.name} query failed: {type(e).__name__}", **where
            ) from e
        if not rows:
            raise SubjectNotFound("no record for the subject", **where)
        guard_single(binding, len(rows))
        row = rows[0]
        guard_identity(binding, subject, row.get(id_column))
        return {f: to_catalogue(binding, f, row.get(binding.source_path(f))) for f in fields}

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


_SUBJECT = "subject_value"


@functools.lru_cache(maxsize=512)
def _select_one(name: str, schema: str | None, columns: tuple[str, ...]) -> Select[Any]:
    """``SELECT columns FROM name WHERE columns[0] = :subject_value LIMIT 2``.

    Built once per table and column list (SQLAlchemy then reuses its compiled form): building
    the statement anew cost more than running it. The subject is always a bound parameter.
    """
    source_table = table(name, *(column(c) for c in columns), schema=schema)
    return (
        select(*(source_table.c[c] for c in columns))
        .where(source_table.c[columns[0]] == bindparam(_SUBJECT, type_=String()))
        .limit(2)
    )


def build_read_only_engine(source: SourceConfig) -> Engine:
    """An engine that can only read: SQLite ``mode=ro`` or a read-only PostgreSQL session."""
    url = make_url(source.endpoint)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            raise BindingError(f"source {source.name}: a SQLite source needs a file path")
        timeout = source.timeouts.read_seconds

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
            )

        return create_engine(
            "sqlite://", creator=connect, poolclass=QueuePool, pool_size=5, max_overflow=5
        )
    if backend == "postgresql":
        statement_ms = int(source.timeouts.read_seconds * 1000)
        options = f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}"
        schema = source.options.get("schema")
        if schema:
            options += f" -c search_path={schema}"
        return create_engine(
            url,
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            connect_args={
                "options": options,
                "connect_timeout": max(1, int(source.timeouts.connect_seconds)),
            },
        )
    raise BindingError(f"source {source.name}: unsupported database {backend!r}")
