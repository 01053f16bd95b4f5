"""Subject access requests as officers handle them: the one-month due date, which identifiers
name a household rather than one person, and CSV cells a spreadsheet cannot run. Pure.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Final

#: Identifiers of a property (its address, its council tax account): an exchange found by one
#: is about a household, not necessarily about the person asking.
HOUSEHOLD_IDENTIFIERS: Final[frozenset[str]] = frozenset({"uprn", "council_tax_account"})

#: What an officer may search a subject access request by (a transaction id names no one).
SEARCHABLE_IDENTIFIERS: Final[tuple[str, ...]] = (
    "nhs_number",
    "person_id",
    "uprn",
    "council_tax_account",
)

IDENTIFIER_LABELS: Final[dict[str, str]] = {
    "nhs_number": "NHS number",
    "person_id": "Council person id",
    "uprn": "Property (UPRN)",
    "council_tax_account": "Council tax account",
}

_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def due_date(received: dt.date) -> dt.date:
    """One calendar month after ``received``: the same day of the next month, or that month's
    last day where it has no such day (31 January: 28 or 29 February)."""
    year = received.year + (received.month == 12)
    month = received.month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(received.day, last))


def is_household(subject_type: str) -> bool:
    return subject_type in HOUSEHOLD_IDENTIFIERS


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula: text starting with
    ``= + - @``, a tab or a carriage return gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
