"""What the cluster tests need: PostgreSQL, HAProxy, Redis. Skipped without them locally; under
``CI=true`` a missing one fails (the multi-instance test must run in CI)."""

from __future__ import annotations

import os
import shutil

import pytest

from bench.topology import haproxy_binary, pg_base_url, redis_answers


def require(*, haproxy: bool = True, redis: bool = True, pg_dump: bool = False) -> str:
    """The PostgreSQL base URL; skips (fails under CI=true) when something is missing."""
    missing = []
    url = pg_base_url()
    if url is None:
        missing.append("PostgreSQL (BROKER_TEST_DATABASE_URL)")
    if haproxy and haproxy_binary() is None:
        missing.append("haproxy (Debian's package)")
    if redis and not redis_answers():
        missing.append("Redis on 127.0.0.1:6379")
    if pg_dump and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        missing.append("pg_dump and pg_restore")
    if missing:
        message = "the cluster tests need " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: they must run, not skip)")
        pytest.skip(message)
    assert url is not None
    return url
