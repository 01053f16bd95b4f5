"""Two broker instances of one deployment on ONE database (SQLite, and PostgreSQL when
configured), served over real HTTP on loopback: the same keys, pseudonym key and public URL (the
log's origin), each with its own copy of the agreements (as two hosts would hold them).

The agreements are polled every 60 s here, so that a test decides when an instance looks at the
stored agreement state (:meth:`PolicyRuntime.poll`) and counts the cycles it takes."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broker.db.engine import normalise_url
from demo.identity import register_demo_identity_provider
from tests.support import LiveBroker, live_broker

REPO = Path(__file__).resolve().parents[2]
PG_URL_ENV = "BROKER_TEST_DATABASE_URL"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database for the module's two instances: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared-db') / 'broker.db'}"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"PostgreSQL leg: set {PG_URL_ENV} to run it")
    schema = f"s_{secrets.token_hex(6)}"
    admin = sa.create_engine(normalise_url(base), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(normalise_url(base))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def examples_copy(tmp: Path, name: str) -> Path:
    root = tmp / name
    shutil.copytree(REPO / "agreements" / "examples", root)
    return root


def wait_loaded(broker: LiveBroker) -> None:
    deadline = time.monotonic() + 15
    while broker.services.policy_runtime.last is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the instance loaded no agreements")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pair(
    shared_database: str, tmp_path_factory: pytest.TempPathFactory, demo_sources: Any
) -> Iterator[tuple[LiveBroker, LiveBroker]]:
    tmp = tmp_path_factory.mktemp("shared")
    settings: dict[str, Any] = {
        "demo": True,
        "bindings": demo_sources.bindings,
        "rate_limit_per_second": 1000.0,
        "rate_limit_burst": 1000,
        "policy_poll_seconds": 60,
        "console_sign_in_attempts_per_window": 1000,
    }
    with live_broker(
        tmp, shared_database, agreements_dir=examples_copy(tmp, "agreements-a"), **settings
    ) as a:
        register_demo_identity_provider(a.services.identity.store)
        with live_broker(
            tmp,
            shared_database,
            public_url=a.settings.public_url,
            agreements_dir=examples_copy(tmp, "agreements-b"),
            **settings,
        ) as b:
            wait_loaded(a)
            wait_loaded(b)
            yield a, b
