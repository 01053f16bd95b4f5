"""Review-by and expiry dates told to the parties' webhooks 60, 30 and 7 days ahead.

:func:`reminders_due` is pure: which (agreement, version, party, date kind, days) reminders fall
due today. :func:`send_reminders` queues each one once (an admin act ``agreements.reminder``
names it, so a second run, or another instance, queues nothing again); the broker runs it under
the audit jobs' lease.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, select

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.trust_root import notify_party
from broker.audit.admin import log_admin_event
from broker.db.tables import admin_events

DAYS_AHEAD = (60, 30, 7)
EVENT_REMINDER = "agreements.date-approaching"


@dataclass(frozen=True)
class Reminder:
    agreement_id: str
    version: int
    party: str
    kind: str  # "review_by" | "expires_on"
    date: dt.date
    days: int

    @property
    def key(self) -> str:
        return f"{self.agreement_id}:v{self.version}:{self.party}:{self.kind}:{self.days}"


def reminders_due(agreements: Iterable[VerifiedAgreement], today: dt.date) -> list[Reminder]:
    """The reminders of agreements in force (or signed, awaiting their start) due ``today``:
    a date 60, 30 or 7 days ahead (the nearest threshold not yet passed, so a broker that was
    down on the day still tells the parties once)."""
    out: list[Reminder] = []
    for item in agreements:
        a = item.agreement
        if a is None or item.status.status not in ("active", "pending"):
            continue
        for kind, date in (
            ("review_by", a.validity.review_by),
            ("expires_on", a.validity.expires_on),
        ):
            left = (date - today).days
            due = [d for d in DAYS_AHEAD if 0 <= left <= d]
            if not due:
                continue
            for party in a.parties:
                out.append(Reminder(a.id, a.version, party.id, kind, date, min(due)))
    return out


def send_reminders(
    engine: Engine, agreements: Iterable[VerifiedAgreement], now: dt.datetime
) -> int:
    """Queue every reminder due and not yet sent; returns how many were queued."""
    due = reminders_due(agreements, now.date())
    sent = 0
    with engine.begin() as conn:
        done = set(
            conn.execute(
                select(admin_events.c.target).where(admin_events.c.action == "agreements.reminder")
            ).scalars()
        )
        for reminder in due:
            if reminder.key in done:
                continue
            data = {
                "agreement_id": reminder.agreement_id,
                "version": reminder.version,
                "date_kind": reminder.kind,
                "date": reminder.date.isoformat(),
                "days_ahead": reminder.days,
            }
            entry = log_admin_event(
                conn,
                at=now,
                actor="broker",
                action="agreements.reminder",
                target=reminder.key,
                details={**data, "party": reminder.party},
            )
            notify_party(conn, reminder.party, entry, now, data, event_type=EVENT_REMINDER)
            done.add(reminder.key)
            sent += 1
    return sent
