"""Subject access requests at the console: the request (received, due), what the log holds about
the subject within the officer's scope, and the export prepared for the person.

- The subject is kept only as pseudonyms (under every key version); the identifier typed by the
  officer is never stored or logged.
- Lines come from :func:`broker.subjects.report.build_report` (the citizen's own report): each
  exchange under a safeguarding hold is marked with why and until when, and the export leaves it
  out, as the citizen's report does.
- The export separates other people's data (DPA 2018 Sch. 2 para 16): the user ids and case
  references of other organisations' staff are redacted, justifications are never included, and
  a search by property (UPRN, council tax account) is labelled household-level. What was
  withheld, and why, is listed for the officer's file, apart from what is disclosed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, insert, select, update

from broker.audit.search import AuditScope
from broker.console import queries
from broker.console.accounts import Account, Role
from broker.console.tables import console_subject_access
from broker.core.errors import InvalidInput, NotFound
from broker.core.subject_access import IDENTIFIER_LABELS, csv_cell, due_date, is_household
from broker.subjects.report import HoldRules, build_report

REDACTED: Final = "[redacted]"
REDACTION_NOTE: Final = (
    "The user ids and case references of other organisations' staff are redacted: they are "
    "other people's information (DPA 2018 Sch. 2 para 16). Justifications are not included, "
    "as they may name other people."
)
HOLD_NOTE: Final = (
    "Exchanges under a safeguarding hold are withheld until the hold ends, as the agreement "
    "they were made under requires (the person's own access report withholds them too)."
)
HOUSEHOLD_NOTE: Final = (
    "Household-level search: these exchanges are about the property, so they may be about "
    "other people living there. Check each one before disclosing it."
)
OLDEST_RECEIVED: Final = dt.date(2000, 1, 1)
MAX_OPEN_LISTED: Final = 200


@dataclass(frozen=True)
class AccessRequest:
    id: str
    party_id: str
    subject_type: str
    pseudonyms: tuple[str, ...]
    received_on: dt.date
    due_on: dt.date
    opened_by: str
    closed: bool

    def overdue(self, today: dt.date) -> bool:
        return not self.closed and today > self.due_on

    @property
    def label(self) -> str:
        return IDENTIFIER_LABELS.get(self.subject_type, self.subject_type)

    @property
    def household(self) -> bool:
        return is_household(self.subject_type)

    def to_json(self, today: dt.date) -> dict[str, object]:
        return {
            "request_id": self.id,
            "subject_type": self.subject_type,
            "subject_pseudonym": self.pseudonyms[-1],
            "household_level": self.household,
            "received_on": self.received_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "overdue": self.overdue(today),
            "closed": self.closed,
        }


def parse_received(text: str, today: dt.date) -> dt.date:
    """The date a request was received (``YYYY-MM-DD``; empty: today). Raises InvalidInput."""
    if not text.strip():
        return today
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidInput("the date received is written YYYY-MM-DD") from e
    if day > today:
        raise InvalidInput("the date received cannot be in the future")
    if day < OLDEST_RECEIVED:
        raise InvalidInput(f"the date received cannot be before {OLDEST_RECEIVED.isoformat()}")
    return day


def _row(row: Any) -> AccessRequest:
    return AccessRequest(
        id=str(row.id),
        party_id=str(row.party_id),
        subject_type=str(row.subject_type),
        pseudonyms=tuple(json.loads(row.subject_pseudonyms)),
        received_on=row.received_on,
        due_on=row.due_on,
        opened_by=str(row.opened_by),
        closed=row.closed_ms is not None,
    )


def _mine(account: Account) -> Any:
    """Requests this officer may see: its party's (oversight: every party's)."""
    t = console_subject_access.c
    if account.role is Role.OVERSIGHT:
        return t.party_id.is_not(None)
    return t.party_id == account.party_id


def open_request(
    engine: Engine,
    account: Account,
    *,
    subject_type: str,
    pseudonyms: Sequence[str],
    received_on: dt.date,
    now_ms: int,
) -> AccessRequest:
    request = AccessRequest(
        id=str(uuid.uuid4()),
        party_id=account.party_id,
        subject_type=subject_type,
        pseudonyms=tuple(pseudonyms),
        received_on=received_on,
        due_on=due_date(received_on),
        opened_by=account.username,
        closed=False,
    )
    with engine.begin() as conn:
        conn.execute(
            insert(console_subject_access).values(
                id=request.id,
                party_id=request.party_id,
                subject_type=request.subject_type,
                subject_pseudonyms=json.dumps(list(request.pseudonyms)),
                received_on=request.received_on,
                due_on=request.due_on,
                opened_by=request.opened_by,
                opened_ms=now_ms,
            )
        )
    return request


def get_request(engine: Engine, account: Account, request_id: str) -> AccessRequest:
    """Raises NotFound (also for another party's request)."""
    t = console_subject_access.c
    with engine.connect() as conn:
        row = conn.execute(
            select(console_subject_access).where(t.id == request_id[:36], _mine(account))
        ).first()
    if row is None:
        raise NotFound(f"no subject access request {request_id[:36]} that you may see")
    return _row(row)


def open_requests(engine: Engine, account: Account) -> list[AccessRequest]:
    """Open requests, the one due first first."""
    t = console_subject_access.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(console_subject_access)
            .where(_mine(account), t.closed_ms.is_(None))
            .order_by(t.due_on, t.opened_ms)
            .limit(MAX_OPEN_LISTED)
        ).all()
    return [_row(r) for r in rows]


def close_request(engine: Engine, account: Account, request_id: str, now_ms: int) -> None:
    """Raises NotFound."""
    request = get_request(engine, account, request_id)
    t = console_subject_access.c
    with engine.begin() as conn:
        conn.execute(
            update(console_subject_access)
            .where(t.id == request.id, t.closed_ms.is_(None))
            .values(closed_by=account.username, closed_ms=now_ms)
        )


@dataclass(frozen=True)
class Findings:
    """What the log holds about the subject within the officer's scope, oldest first; held
    lines carry ``held_back_until`` and ``hold_reason``."""

    request: AccessRequest
    lines: list[dict[str, Any]]

    @property
    def held(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "hold_reason" in line]


def findings(
    engine: Engine,
    request: AccessRequest,
    *,
    scope: AuditScope | None,
    holds: HoldRules,
    now_ms: int,
    party_names: Mapping[str, str],
) -> Findings:
    report = build_report(
        engine,
        pseudonyms=request.pseudonyms,
        view="oversight" if scope is None else "governance",
        holds=holds,
        now_ms=now_ms,
        scope=scope,
        party_names=party_names,
    )
    # The personal values the log still holds (user id, case reference), for the export.
    personal = {
        str(e["exchange_id"]): e
        for e in queries.subject_exchanges(engine, request.pseudonyms, scope=scope)
    }
    lines = []
    for line in report.exchanges:
        entry = personal.get(str(line["exchange_id"]), {})
        lines.append(
            {
                **line,
                "user_id": entry.get("user_id"),
                "case_reference": entry.get("case_reference"),
                "household_level": request.household,
            }
        )
    return Findings(request, lines)


def disclosure(found: Findings, account: Account, today: dt.date) -> dict[str, Any]:
    """The export: what is disclosed to the person, and apart, what was withheld and why."""
    disclosed: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []
    redacted = 0
    for line in found.lines:
        if "hold_reason" in line:
            withheld.append(
                {
                    "exchange_id": line["exchange_id"],
                    "time": line["time"],
                    "organisation": line["organisation"],
                    "reason": line["hold_reason"],
                    "until": line["held_back_until"],
                }
            )
            continue
        own = line["organisation"] == account.party_id
        shown = {
            k: line[k]
            for k in (
                "time",
                "organisation",
                "organisation_name",
                "dataset",
                "purpose",
                "decision",
                "released_fields",
                "lawful_basis",
                "break_glass",
            )
        }
        for name in ("user_id", "case_reference"):
            value = line.get(name)
            if value is not None and not own:
                redacted += 1
                value = REDACTED
            shown[name] = value
        disclosed.append(shown)
    notes = [REDACTION_NOTE]
    if found.request.household:
        notes.append(HOUSEHOLD_NOTE)
    if withheld:
        notes.append(HOLD_NOTE)
    return {
        "request": found.request.to_json(today),
        "prepared_by": account.party_id,
        "prepared_on": today.isoformat(),
        "disclosed": disclosed,
        "notes": notes,
        "withheld": {
            "for": "the officer's file: not for disclosure",
            "held_exchanges": withheld,
            "redacted_values": redacted,
        },
    }


CSV_COLUMNS: Final = (
    "section",
    "time",
    "organisation",
    "dataset",
    "purpose",
    "decision",
    "released_fields",
    "lawful_basis",
    "break_glass",
    "user_id",
    "case_reference",
    "reason",
    "until",
)


def export_csv(document: Mapping[str, Any]) -> str:
    """The export as CSV: disclosed rows, notes, then the withheld rows (each marked), with
    every cell neutralised against formula injection."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d in document["disclosed"]:
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    "disclosed",
                    d["time"],
                    d["organisation_name"] or d["organisation"],
                    d["dataset"],
                    d["purpose"],
                    d["decision"],
                    " ".join(d["released_fields"]),
                    "; ".join(d["lawful_basis"]),
                    d["break_glass"],
                    d["user_id"],
                    d["case_reference"],
                    "",
                    "",
                )
            ]
        )
    for note in document["notes"]:
        writer.writerow([csv_cell("note"), csv_cell(note)])
    for w in document["withheld"]["held_exchanges"]:
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    "withheld (officer's file, not for disclosure)",
                    w["time"],
                    w["organisation"],
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    w["reason"],
                    w["until"],
                )
            ]
        )
    return out.getvalue()
