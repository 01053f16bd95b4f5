"""Shared fixtures: settings on a temporary directory, databases (SQLite always, PostgreSQL
when BROKER_TEST_DATABASE_URL is set), registered clients with real keys, and a live broker
served by uvicorn on loopback."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine

from broker.db.engine import build_engine, normalise_url

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

PG_URL_ENV = "BROKER_TEST_DATABASE_URL"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not os.environ.get(PG_URL_ENV):
        raise pytest.UsageError(
            f"CI=true but {PG_URL_ENV} is not set: the PostgreSQL leg must run in CI, never skip"
        )


def _pg_url_with_schema(base: str, schema: str) -> str:
    url = sa.engine.make_url(normalise_url(base))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped at the end."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"PostgreSQL leg: set {PG_URL_ENV} to run it")
    schema = f"t_{secrets.token_hex(6)}"
    # No pool: each use opens and closes its own connection (nothing left open for the session).
    admin = sa.create_engine(normalise_url(base), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_url_with_schema(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each database-backed test runs on SQLite, and on PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    base_url: str = request.getfixturevalue("pg_schema_url")
    # A clean schema per test: drop everything the previous test created.
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    yield base_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = build_engine(database_url, pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Logs as the broker writes them (JSON to stderr), at WARNING unless a test raises it."""
    from broker.observability import configure_logging

    configure_logging("WARNING", json_lines=True)


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The synthetic Calderbridge source systems (council databases, NHS FHIR server, police
    REST service) on loopback, started once per test session."""
    from demo.sources.runtime import start_demo_sources

    sources = start_demo_sources(tmp_path_factory.mktemp("demo-sources"))
    try:
        yield sources
    finally:
        sources.stop()
