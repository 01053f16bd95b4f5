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
from broker.core.names import (
    IDENTIFIER_RULE,
    control_or_format,
    free_text_problem,
    instant_problem,
    is_field_name,
    is_identifier,
    trim_space,
)
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
    office hours and expiry depend on the server's settings) or outside the years 1970-2199, or
    when the request is not well formed: an identifier that is not one
    (:data:`broker.core.names.IDENTIFIER_PATTERN`), a name that is not a field name, control or
    format characters, or free text with fewer than three letters or digits. Free text is
    stripped of what Go's ``strings.TrimSpace`` strips (blank text is no text), so every engine,
    OPA included, reads it alike (docs/policy.md).
    """
    problems: list[FieldProblem] = []
    instant = instant_problem(now)
    if instant is not None:
        problems.append(FieldProblem("now", instant))
    for name in ("client_id", "party", "purpose", "dataset"):
        if not getattr(request, name):
            problems.append(FieldProblem(name, "must not be empty"))
    problems.extend(_string_problems(request))
    case_reference = _free_text(request.case_reference, "case_reference", problems)
    justification = _free_text(request.justification, "justification", problems)
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
        "case_reference": case_reference,
        "break_glass": request.break_glass,
        "justification": justification,
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


def _string_problems(request: PolicyRequest) -> list[FieldProblem]:
    """Every identifier and name of ``request`` that may not reach an engine (broker/core/names.py:
    rego-cpp would mangle it or fail where OPA decides)."""
    problems = [
        FieldProblem(name, IDENTIFIER_RULE)
        for name, value in (
            ("client_id", request.client_id),
            ("party", request.party),
            ("purpose", request.purpose),
            ("dataset", request.dataset),
            ("agreement_id", request.agreement_id or None),
            ("user.role", request.user_role or None),
        )
        if value is not None and not is_identifier(value)
    ]
    if control_or_format(request.user_id) or "\\" in request.user_id:
        # Read by no rule, but rego-cpp reads a backslash in any input string as a JSON escape.
        problems.append(FieldProblem("user.id", "no control or format characters, no backslash"))
    for where, names, check in (
        ("fields", request.fields or (), is_field_name),
        ("claims", request.claims, is_field_name),
        ("consent_document_types", request.consent_covers, is_identifier),
        ("consent_document_types", request.document_types, is_identifier),
    ):
        if not all(check(name) for name in names):
            problems.append(FieldProblem(where, "a name the policy cannot take"))
    return problems


def _free_text(value: str | None, where: str, problems: list[FieldProblem]) -> str | None:
    """Free text as every engine sees it alike: stripped of what Go's ``strings.TrimSpace``
    strips; a problem added when it is still not acceptable. ``None`` and blank text are
    ``None`` (the policy treats them alike: no text)."""
    if value is None:
        return None
    text = trim_space(value)
    if not text:
        return None
    problem = free_text_problem(text)
    if problem is not None:
        problems.append(FieldProblem(where, problem))
    return text


def _names(values: Sequence[str]) -> list[str]:
    # Duplicates say nothing more; a sorted list keeps equal requests equal (and cacheable).
    return sorted(set(values))
