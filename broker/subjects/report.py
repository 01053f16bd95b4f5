"""The access report: every exchange about one person, from the audit log ("who has seen my
data, when and why").

Entries are found by the subject's pseudonyms under every key version, so only exchanges that
named this person by a personal identifier are found (NHS number, person id): a UPRN names a
household and is refused. Each line holds when, which organisation, which dataset and purpose,
the released field *names*, the lawful basis and the decision (``not_found`` where the source
held no such person: nothing released); never the requesting user, the
justification, the case reference or any record, so nothing about other people is shown.

Safeguarding flows may set ``subject_access_hold_days``: such exchanges are held back from the
citizen's view (``subject`` view) until ``time + hold``, and shown once the hold ends. The
governance view shows them with ``held_back_until``. An exchange whose agreement is not known to
the broker any more is held back from the citizen (fail closed) and flagged for governance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Engine

from broker.agreements.loader import VerifiedAgreement
from broker.audit.entry import format_time_ms, parse_time_ms
from broker.audit.search import AuditScope, SearchFilters, search
from broker.consent.model import PERSONAL_IDENTIFIERS
from broker.core.errors import FieldProblem, InvalidInput

View = Literal["subject", "governance", "oversight"]
DAY_MS: Final = 86_400_000
MAX_ENTRIES: Final = 5000


def check_personal_identifier(subject_type: str) -> None:
    """Raises :class:`InvalidInput` unless ``subject_type`` identifies one person."""
    if subject_type not in PERSONAL_IDENTIFIERS:
        raise InvalidInput(
            "an access report is by a personal identifier",
            [
                FieldProblem(
                    "subject_type",
                    "must be nhs_number or person_id (an address or account is not one person)",
                )
            ],
        )


@dataclass(frozen=True)
class HoldRules:
    """``subject_access_hold_days`` of every flow the broker knows, by agreement version."""

    by_version: Mapping[tuple[str, str], Sequence[tuple[str, tuple[str, ...], int]]]
    """(agreement id, version) -> [(dataset, recipients, hold days)]."""

    @classmethod
    def from_agreements(cls, agreements: Iterable[VerifiedAgreement]) -> HoldRules:
        rules: dict[tuple[str, str], list[tuple[str, tuple[str, ...], int]]] = {}
        for verified in agreements:
            a = verified.agreement
            if a is None:
                continue
            rules[(a.id, str(a.version))] = [
                (f.dataset, f.recipients, f.subject_access_hold_days) for f in a.flows
            ]
        return cls(rules)

    def hold_days(self, agreement_id: str, version: str, dataset: str, party: str) -> int | None:
        """The hold for an exchange, or None when the agreement is unknown. An unknown version
        of a known agreement takes the longest hold of the versions known."""
        flows = self.by_version.get((agreement_id, version))
        if flows is None:
            known = [
                f for (aid, _), fs in self.by_version.items() if aid == agreement_id for f in fs
            ]
            if not known:
                return None
            flows = known
        matching = [days for ds, recipients, days in flows if ds == dataset and party in recipients]
        candidates = matching or [days for ds, _, days in flows if ds == dataset]
        return max(candidates, default=0)


@dataclass(frozen=True)
class AccessReport:
    exchanges: list[dict[str, Any]]
    held_back: list[dict[str, Any]]
    """Exchanges held back from the citizen (the hold's own record; never shown to them)."""

    def to_json(self, view: View) -> dict[str, Any]:
        if view == "subject":
            return {"exchanges": self.exchanges}
        return {"exchanges": self.exchanges, "held_back": self.held_back}


def _line(item: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    not_found = "not_found"
    agreement = item.get("agreement") or {}
    return {
        "exchange_id": item["exchange_id"],
        "time": item["time"],
        "organisation": item["party_id"],
        "organisation_name": names.get(str(item["party_id"])),
        "dataset": item["dataset"],
        "purpose": item["purpose"],
        # "not_found": the source holds no such person, nothing was released (never "allow").
        "decision": not_found if item.get("outcome") == not_found else item["decision"],
        "released_fields": [] if item.get("outcome") == not_found else item["released_fields"],
        "lawful_basis": list(item["lawful_basis"]),
        "agreement": {"id": agreement.get("id"), "version": agreement.get("version")}
        if agreement
        else None,
        "break_glass": item["break_glass"],
    }


def build_report(
    engine: Engine,
    *,
    pseudonyms: Sequence[str],
    view: View,
    holds: HoldRules,
    now_ms: int,
    scope: AuditScope | None = None,
    party_names: Mapping[str, str] | None = None,
) -> AccessReport:
    """The report for the subject with these pseudonyms, in time order (oldest first).

    ``scope`` narrows a governance view to its party's exchanges and agreements;
    ``party_names`` gives each organisation's name."""
    names = party_names or {}
    items: list[dict[str, object]] = []
    cursor: str | None = None
    filters = SearchFilters(kind="exchange", subject_pseudonyms=tuple(pseudonyms))
    while len(items) < MAX_ENTRIES:
        page = search(engine, filters, cursor=cursor, limit=500, scope=scope)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    shown: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for item in reversed(items):
        line = _line(item, names)
        agreement = line["agreement"]
        if agreement is None:
            shown.append(line)
            continue
        days = holds.hold_days(
            str(agreement["id"]),
            str(agreement["version"]),
            str(line["dataset"]),
            str(line["organisation"]),
        )
        at_ms = parse_time_ms(str(line["time"]))
        if days is None:
            held.append({**line, "held_back_until": None, "hold_reason": "agreement unknown"})
            continue
        until = at_ms + days * DAY_MS
        if days > 0 and now_ms < until:
            held.append(
                {
                    **line,
                    "held_back_until": format_time_ms(until),
                    "hold_reason": f"subject access hold of {days} days",
                }
            )
            continue
        shown.append(line)
    # Log order is commit order; people read a report in time order (fixed-width UTC text).
    shown.sort(key=_when)
    held.sort(key=_when)
    if view != "subject":
        # Officers see everything, each held entry marked.
        return AccessReport(sorted([*shown, *held], key=_when), held)
    return AccessReport(shown, held)


def _when(line: Mapping[str, Any]) -> tuple[str, str]:
    return str(line["time"]), str(line["exchange_id"])
