"""Reads of audit data are recorded, and a read that cannot be recorded fails."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from broker.auth.access_log import AuditReadLog
from broker.core.errors import Unavailable
from broker.db import migrate


def test_reads_are_recorded_newest_first(engine: Engine) -> None:
    migrate.upgrade(engine)
    log = AuditReadLog(engine)
    log.record("ccc-governance", "calderbridge-city-council", "exchanges.search", {"dataset": "x"})
    log.record("r9z-governance", "R9Z", "exchanges.get", {"id": "0193"})
    recent = log.recent()
    assert [(r.client_id, r.resource, r.query) for r in recent] == [
        ("r9z-governance", "exchanges.get", {"id": "0193"}),
        ("ccc-governance", "exchanges.search", {"dataset": "x"}),
    ]


def test_an_unrecordable_read_fails_closed(engine: Engine) -> None:
    # No migrations: the table does not exist, so the write fails.
    log = AuditReadLog(engine)
    with pytest.raises(Unavailable, match="could not be recorded"):
        log.record("c", "p", "exchanges.search", {})
