"""The suspension store: the snapshot the exchange and the token exchange read is at most
``refresh_seconds`` old (a change made elsewhere shows after it), its own changes show at once,
and each change is an admin event; bad names are refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from broker.auth.registry import Registry
from broker.core.errors import Conflict, InvalidInput, NotFound
from broker.db import migrate
from broker.db.engine import build_engine
from broker.db.tables import admin_events
from broker.identity.suspensions import UserSuspensions

Stores = tuple[UserSuspensions, UserSuspensions, list[float], Engine]

ISSUER = "https://idp.example"


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    engine = build_engine(f"sqlite:///{tmp_path / 'b.db'}", pooled=False)
    migrate.upgrade(engine)
    Registry(engine).add_party("p1", "Party one", "other", None, actor="test")
    now = [100.0]
    here = UserSuspensions(engine, clock=lambda: now[0])
    elsewhere = UserSuspensions(engine, clock=lambda: now[0])
    return here, elsewhere, now, engine


def test_a_change_elsewhere_shows_within_the_refresh(
    stores: Stores,
) -> None:
    here, elsewhere, now, _ = stores
    assert not elsewhere.suspended("p1", ISSUER, "u1")  # snapshot read at t=100
    here.suspend("p1", ISSUER, "u1", reason="lost card", actor="test")
    assert here.suspended("p1", ISSUER, "u1")  # its own change at once
    now[0] += 0.5
    assert not elsewhere.suspended("p1", ISSUER, "u1")
    now[0] += 0.5
    assert elsewhere.suspended("p1", ISSUER, "u1")
    assert not elsewhere.suspended("p1", ISSUER, "u2")
    assert not elsewhere.suspended("p2", ISSUER, "u1")
    here.reinstate("p1", ISSUER, "u1", reason="found", actor="test")
    now[0] += 1.0
    assert not elsewhere.suspended("p1", ISSUER, "u1")


def test_refusals_and_admin_events(
    stores: Stores,
) -> None:
    here, _, _, engine = stores
    with pytest.raises(InvalidInput) as bad:
        here.suspend("p1", " ", "u1", reason="", actor="test")
    assert {p.location for p in bad.value.problems} == {"issuer", "reason"}
    with pytest.raises(NotFound):
        here.suspend("nobody", ISSUER, "u1", reason="r", actor="test")
    here.suspend("p1", ISSUER, "u1", reason="r", actor="cli:ann")
    with pytest.raises(Conflict):
        here.suspend("p1", ISSUER, "u1", reason="r", actor="cli:ann")
    with pytest.raises(NotFound):
        here.reinstate("p1", ISSUER, "u2", reason="r", actor="cli:ann")
    assert [s.subject for s in here.list("p1")] == ["u1"]
    with engine.connect() as conn:
        rows = conn.execute(select(admin_events.c.actor, admin_events.c.action)).all()
    assert [tuple(r) for r in rows if r.action.startswith("user.")] == [("cli:ann", "user.suspend")]
