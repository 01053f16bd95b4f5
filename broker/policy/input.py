"""The policy input: one request, in the shape ``policies/sharing.rego`` reads. Pure.

Schema (every key is always present unless marked optional)::

    client_id       str           the authenticated partner system
    party           str           the party that system is registered for
    user            {id, role, verified, assurance}   the person on whose behalf the system
                    asks: ``assurance`` is "verified" (a user-restricted token or a checked ID
                    token; ``verified`` is then true), "asserted" (``requested_by`` on the
                    system's word) or "system" (no person: the system asks for itself, ``id``
                    is its client id and ``role`` is "")
    agreement_id    str           "" when none was named (open data needs none)
    purpose         str
    dataset         str
    fields          [str]         optional: absent means every field the request may see
    mode            "fetch" | "verify"
    claims          [str]         the claimed field *names* in verify mode (never their values)
    case_reference  str | null
    break_glass     bool
    justification   str | null
    consent         "given" | "not_covered" | "withdrawn" | "none"   consent on record for this
                    subject and flow; ``not_covered``: one is in force but narrowed to document
                    types that leave out some the request would release
    consent_document_types  optional, with ``not_covered`` only: {covered: [str], requested:
                    [str]}, the types the consent covers and those the request would release
    now             str           RFC 3339, UTC, e.g. "2026-03-29T00:30:00Z"
    now_ns          int           the same instant, nanoseconds since the epoch
    clock           {uk_date, uk_weekday (1 = Monday), uk_minute (minutes since local midnight),
                     uk_text ("Sun 01:30")}   UK local time, Europe/London, summer time included

The broker computes UK local time here rather than in Rego so that every engine sees the same
answer whatever time zone database it ships (rego-cpp, regorus and OPA each have their own).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from broker.core.errors import FieldProblem, InvalidInput
from broker.policy.compiled import UK, WEEKDAY_NAMES

Mode = Literal["fetch", "verify"]
ConsentStatus = Literal["given", "not_covered", "withdrawn", "none"]
Assurance = Literal["verified", "asserted", "system"]


@dataclass(frozen=True)
class PolicyRequest:
    """What the exchange service knows about a request when it asks for a decision."""

    client_id: str
    party: str
    user_id: str
    user_role: str
    purpose: str
    dataset: str
    agreement_id: str | None = None
    fields: tuple[str, ...] | None = None
    """``None``: every field the request may see."""
    mode: Mode = "fetch"
    claims: tuple[str, ...] = ()
    """Field names of the claim set in verify mode; values stay with the broker."""
    case_reference: str | None = None
    break_glass: bool = False
    justification: str | None = None
    consent: ConsentStatus = "none"
    consent_covers: tuple[str, ...] = ()
    """With ``consent="not_covered"``: the document types the consent in force covers."""
    document_types: tuple[str, ...] = ()
    """With ``consent="not_covered"``: the document types the request would release."""
    user_assurance: Assurance = "asserted"
    """How the user is known (see the schema above). The default is the weakest assurance that
    names a person, which every flow that needs a verified user refuses."""


def rfc3339_utc(now: dt.datetime) -> str:
    """``now`` as RFC 3339 in UTC with a ``Z`` and whole seconds (or microseconds when present)."""
    utc = now.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def clock_fields(now: dt.datetime) -> dict[str, Any]:
    """UK local time of ``now`` as the policy reads it."""
    local = now.astimezone(UK)
    return {
        "uk_date": local.date().isoformat(),
        "uk_weekday": local.isoweekday(),
        "uk_minute": local.hour * 60 + local.minute,
        "uk_text": f"{WEEKDAY_NAMES[local.isoweekday() - 1]} {local:%H:%M}",
    }


def epoch_ns(now: dt.datetime) -> int:
    """Nanoseconds since the epoch, exact (no float rounding)."""
    delta = now.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def build_input(request: PolicyRequest, now: dt.datetime) -> dict[str, Any]:
    """The policy input for ``request`` at instant ``now``.

    Raises :class:`InvalidInput` when ``now`` is naive (a local time without a zone would make
    office
    hours and expiry depend on the server's settings) or when the request is not well formed.
    """
    problems: list[FieldProblem] = []
    if now.tzinfo is None or now.utcoffset() is None:
        problems.append(FieldProblem("now", "must carry a time zone"))
    for name in ("client_id", "party", "purpose", "dataset"):
        if not getattr(request, name):
            problems.append(FieldProblem(name, "must not be empty"))
    if request.mode not in ("fetch", "verify"):
        problems.append(FieldProblem("mode", "must be 'fetch' or 'verify'"))
    if request.user_assurance not in ("verified", "asserted", "system"):
        problems.append(FieldProblem("user.assurance", "must be verified, asserted or system"))
    if request.mode == "verify" and request.fields is not None:
        problems.append(FieldProblem("fields", "verify mode names claims, not fields"))
    if request.mode == "fetch" and request.claims:
        problems.append(FieldProblem("claims", "claims are only for verify mode"))
    if problems:
        raise InvalidInput("the policy input is not well formed", problems)
    policy_input: dict[str, Any] = {
        "client_id": request.client_id,
        "party": request.party,
        "user": {
            "id": request.user_id,
            "role": request.user_role,
            "verified": request.user_assurance == "verified",
            "assurance": request.user_assurance,
        },
        "agreement_id": request.agreement_id or "",
        "purpose": request.purpose,
        "dataset": request.dataset,
        "mode": request.mode,
        "claims": _names(request.claims),
        "case_reference": request.case_reference,
        "break_glass": request.break_glass,
        "justification": request.justification,
        "consent": request.consent,
        "now": rfc3339_utc(now),
        "now_ns": epoch_ns(now),
        "clock": clock_fields(now),
    }
    if request.fields is not None:
        policy_input["fields"] = _names(request.fields)
    if request.consent == "not_covered":
        policy_input["consent_document_types"] = {
            "covered": _names(request.consent_covers),
            "requested": _names(request.document_types),
        }
    return policy_input


def _names(values: Sequence[str]) -> list[str]:
    # Duplicates say nothing more; a sorted list keeps equal requests equal (and cacheable).
    return sorted(set(values))
