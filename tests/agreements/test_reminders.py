"""Review-by and expiry reminders: due at 60, 30 and 7 days, queued once to each party's webhook."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select

from broker.agreements.reminders import reminders_due, send_reminders
from broker.db import migrate
from broker.db.tables import admin_events, parties
from broker.notify.tables import outbox, webhooks
from tests.agreements.conftest import NOW, Loader


def _expiry(load: Loader) -> tuple[dt.date, list[object]]:
    result = load()
    discharge = [a for a in result.agreements if a.status.agreement_id == "ISA-HOSPITAL-DISCHARGE"]
    assert discharge[0].agreement is not None
    return discharge[0].agreement.validity.expires_on, list(result.agreements)


def test_reminders_fall_due_at_60_30_and_7_days(load: Loader) -> None:
    expires, agreements = _expiry(load)

    def due(days_left: int) -> set[tuple[str, str, int]]:
        today = expires - dt.timedelta(days=days_left)
        return {
            (r.party, r.kind, r.days)
            for r in reminders_due(agreements, today)  # type: ignore[arg-type]
            if r.agreement_id == "ISA-HOSPITAL-DISCHARGE" and r.kind == "expires_on"
        }

    assert due(61) == set()
    assert due(60) == {("R9Z", "expires_on", 60), ("calderbridge-city-council", "expires_on", 60)}
    assert {d for _, _, d in due(45)} == {60}
    assert {d for _, _, d in due(30)} == {30}
    assert {d for _, _, d in due(7)} == {7}
    assert {d for _, _, d in due(0)} == {7}
    assert due(-1) == set()


def test_each_reminder_is_queued_once_to_the_party_webhook(engine: Engine, load: Loader) -> None:
    migrate.upgrade(engine)
    expires, agreements = _expiry(load)
    with engine.begin() as conn:
        conn.execute(
            parties.insert().values(id="R9Z", name="Trust", kind="nhs-trust", created_at=NOW)
        )
        conn.execute(
            webhooks.insert().values(
                party_id="R9Z",
                url="https://r9z.example/hook",
                secret="s" * 32,
                active=True,
                created_ms=0,
                updated_ms=0,
            )
        )
    at = dt.datetime.combine(expires - dt.timedelta(days=30), dt.time(9), dt.UTC)
    first = send_reminders(engine, agreements, at)  # type: ignore[arg-type]
    assert first >= 2
    assert send_reminders(engine, agreements, at + dt.timedelta(hours=1)) == 0  # type: ignore[arg-type]
    with engine.connect() as conn:
        queued = conn.execute(
            select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)
        ).all()
        logged = conn.execute(
            select(func.count()).where(admin_events.c.action == "agreements.reminder")
        ).scalar()
    assert logged == first
    assert dict(queued).get("agreements.date-approaching", 0) >= 1  # only R9Z has a webhook
