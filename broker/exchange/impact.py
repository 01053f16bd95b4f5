"""The impact of a draft agreement before anyone signs it: replay logged requests against it. Pure.

Each logged exchange is reduced to its non-personal facts (:class:`LoggedRequest`: party, role,
purpose, dataset, fields asked, mode, how the user was known, whether a case reference was given
and whether glass was broken, the time) and asked again of the policy with the draft in place of
the version in force, as if the request had named the draft. What the log cannot answer is not
guessed: consent is not logged, so a request whose answer under the draft depends on it counts as
``undetermined``.

The report compares with what the log says happened: requests newly allowed or newly denied,
fields newly released or withheld, by party and role, with counts and a few examples. Examples
name party, role, purpose, dataset, fields and day only: never an exchange id, a user, a case
reference or a pseudonym (those are not even read: :func:`logged_request` drops them). Requests
of a party the viewer may not see in detail (neither the requester nor the dataset's provider)
appear as counts only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from broker.agreements.model import Agreement
from broker.core.errors import InvalidInput
from broker.policy.compiled import expand_fields
from broker.policy.engine import Decision
from broker.policy.input import Assurance, ConsentStatus, PolicyRequest, build_input

MAX_DAYS = 90
"""The longest period a run may replay."""
MAX_ENTRIES = 20_000
"""The most logged requests one run replays (the latest first are kept)."""
EXAMPLES_PER_GROUP = 5

Outcome = Literal["allow", "deny", "undetermined"]
Change = Literal["newly_allowed", "newly_denied", "undetermined", "unchanged"]

_ALLOWED_OUTCOMES = frozenset({"allow", "not_found", "held"})
"""Logged outcomes that mean the policy allowed the request (held: awaiting the citizen)."""


@dataclass(frozen=True)
class LoggedRequest:
    """The non-personal facts of one logged exchange, and what the log says happened."""

    at: dt.datetime
    party: str
    client_id: str
    role: str
    purpose: str
    dataset: str
    fields: tuple[str, ...]
    mode: Literal["fetch", "verify"]
    assurance: Assurance | None
    """How the user was known; None when the entry does not say (then it is not guessed)."""
    case_reference: bool
    """A case reference was given (its value is never read)."""
    break_glass: bool
    allowed: bool
    released: tuple[str, ...]
    agreement_id: str | None = None

    @property
    def day(self) -> str:
        return self.at.date().isoformat()


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def logged_request(body: Mapping[str, Any]) -> LoggedRequest | None:
    """The facts of one leaf body (an exchange with a decision), or None for anything else.

    Reads only non-personal keys; personal values are in the leaf as commitments, of which only
    whether one is present is read (a case reference was given or not)."""
    if body.get("kind") != "exchange":
        return None
    decision = body.get("decision")
    if body.get("source_outcome") == "not_found" and decision == "allow":
        decision = "not_found"
    if decision not in (*_ALLOWED_OUTCOMES, "deny"):
        return None
    details = body.get("details") or {}
    agreement = body.get("agreement")
    commitments = body.get("commitments") or {}
    try:
        at = dt.datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
        party, purpose, dataset = body["party_id"], body["purpose"], body["dataset"]
    except (KeyError, ValueError):
        return None
    if not (isinstance(party, str) and isinstance(purpose, str) and isinstance(dataset, str)):
        return None
    mode: Literal["fetch", "verify"] = "verify" if details.get("mode") == "verify" else "fetch"
    logged = details.get("user_assurance")
    assurance: Assurance | None = None
    if logged == "system" or logged == "asserted" or logged == "verified":
        assurance = logged
    elif isinstance(details.get("user_verified"), bool):
        assurance = "verified" if details["user_verified"] else "asserted"
    return LoggedRequest(
        at=at,
        party=party,
        client_id=str(body.get("client_id") or "unknown-client"),
        role=str(body.get("user_role") or ""),
        purpose=purpose,
        dataset=dataset,
        fields=_strs(body.get("requested_fields")),
        mode=mode,
        assurance=assurance,
        case_reference=commitments.get("case_reference") is not None,
        break_glass=bool(body.get("break_glass")),
        allowed=decision in _ALLOWED_OUTCOMES,
        released=_strs(body.get("released_fields")),
        agreement_id=agreement["id"] if isinstance(agreement, dict) else None,
    )


Decide = Callable[[Mapping[str, Any]], Decision]


def _policy_input(
    request: LoggedRequest, agreement_id: str, consent: ConsentStatus, assurance: Assurance
) -> dict[str, Any]:
    verify = request.mode == "verify"
    return build_input(
        PolicyRequest(
            client_id=request.client_id,
            party=request.party,
            user_id="impact-replay",
            user_role="" if assurance == "system" else request.role,
            purpose=request.purpose,
            dataset=request.dataset,
            agreement_id=agreement_id,
            fields=None if verify or not request.fields else request.fields,
            mode=request.mode,
            claims=request.fields if verify else (),
            case_reference="REPLAYED" if request.case_reference else None,
            break_glass=request.break_glass,
            justification="replayed request" if request.break_glass else None,
            consent=consent,
            user_assurance=assurance,
        ),
        request.at,
    )


@dataclass(frozen=True)
class Replayed:
    request: LoggedRequest
    outcome: Outcome
    released: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def change(self) -> Change:
        if self.outcome == "undetermined":
            return "undetermined"
        if self.outcome == "allow" and not self.request.allowed:
            return "newly_allowed"
        if self.outcome == "deny" and self.request.allowed:
            return "newly_denied"
        return "unchanged"

    def newly_released(self) -> tuple[str, ...]:
        if self.outcome != "allow":
            return ()
        before = set(self.request.released) if self.request.allowed else set()
        return tuple(f for f in self.released if f not in before)

    def newly_withheld(self) -> tuple[str, ...]:
        if not self.request.allowed or self.outcome == "undetermined":
            return ()
        after = set(self.released) if self.outcome == "allow" else set()
        return tuple(f for f in self.request.released if f not in after)


def replay(request: LoggedRequest, agreement_id: str, decide: Decide) -> Replayed | None:
    """``request`` asked again naming ``agreement_id``; None when it cannot be asked again (a
    logged value the policy input refuses today).

    What the log does not say is tried every way it could have been: consent given or not, and,
    for an entry that does not say how its user was known, verified or asserted. When the answers
    differ the request is ``undetermined``."""
    assurances: tuple[Assurance, ...] = (
        (request.assurance,) if request.assurance is not None else ("verified", "asserted")
    )
    consents: tuple[ConsentStatus, ...] = ("none", "given")
    try:
        decisions = [
            decide(_policy_input(request, agreement_id, consent, assurance))
            for assurance in assurances
            for consent in consents
        ]
    except InvalidInput:
        return None
    first = decisions[0]
    if any(d.allow != first.allow or d.released_fields != first.released_fields for d in decisions):
        why = "depends on consent (not logged)"
        if request.assurance is None:
            why = "depends on consent or on how the user was known (neither logged)"
        return Replayed(request, "undetermined", (), (why,))
    outcome: Outcome = "allow" if first.allow else "deny"
    return Replayed(request, outcome, first.released_fields, first.reasons)


@dataclass
class Group:
    """The replayed requests of one party and role."""

    party: str
    role: str
    detailed: bool
    requests: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "newly_allowed": 0,
            "newly_denied": 0,
            "undetermined": 0,
            "unchanged": 0,
        }
    )
    fields_released: dict[str, int] = field(default_factory=dict)
    fields_withheld: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, r: Replayed) -> None:
        self.requests += 1
        change = r.change
        self.counts[change] += 1
        if not self.detailed:
            return
        gained, lost = r.newly_released(), r.newly_withheld()
        for f in gained:
            self.fields_released[f] = self.fields_released.get(f, 0) + 1
        for f in lost:
            self.fields_withheld[f] = self.fields_withheld.get(f, 0) + 1
        if (change != "unchanged" or gained or lost) and len(self.examples) < EXAMPLES_PER_GROUP:
            q = r.request
            self.examples.append(
                {
                    "change": change,
                    "party": q.party,
                    "role": q.role,
                    "purpose": q.purpose,
                    "dataset": q.dataset,
                    "fields": list(q.fields),
                    "day": q.day,
                    "newly_released": list(gained),
                    "newly_withheld": list(lost),
                    "reasons": list(r.reasons)[:3],
                }
            )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "party": self.party,
            "role": self.role,
            "detailed": self.detailed,
            "requests": self.requests,
            **self.counts,
        }
        if self.detailed:
            out["fields_newly_released"] = dict(sorted(self.fields_released.items()))
            out["fields_newly_withheld"] = dict(sorted(self.fields_withheld.items()))
            out["examples"] = self.examples
        return out


def may_see(viewer: str | None, request: LoggedRequest, owners: Mapping[str, str]) -> bool:
    """Whether the viewer's party may see this request in detail: it asked, or it provides the
    dataset. ``viewer`` None: an oversight officer, who sees the whole log."""
    return viewer is None or request.party == viewer or owners.get(request.dataset) == viewer


def summarise(
    replayed: Iterable[Replayed],
    *,
    viewer: str | None,
    owners: Mapping[str, str],
    skipped: int = 0,
) -> dict[str, Any]:
    """The report's figures: totals, and per party and role (detailed where the viewer may)."""
    groups: dict[tuple[str, str, bool], Group] = {}
    totals = {"requests": 0, "newly_allowed": 0, "newly_denied": 0, "undetermined": 0}
    for r in replayed:
        detailed = may_see(viewer, r.request, owners)
        role = r.request.role if detailed else ""
        key = (r.request.party, role, detailed)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(r.request.party, role, detailed)
        group.add(r)
        totals["requests"] += 1
        if r.change != "unchanged":
            totals[r.change] += 1
    ordered = sorted(groups.values(), key=lambda g: (not g.detailed, g.party, g.role))
    return {
        "totals": {**totals, "skipped": skipped},
        "by_party_and_role": [g.to_json() for g in ordered],
    }


MatrixKey = tuple[str, str, str, str]


def permissions(
    agreement: Agreement | None, catalogues: Mapping[str, Sequence[str]]
) -> dict[MatrixKey, bool]:
    """What could be asked under ``agreement``: (party, role, dataset, field) -> break-glass only.

    Role ``*`` means any role of the recipient party. Fields are expanded against the register's
    catalogue (a dataset not in it contributes nothing)."""
    out: dict[MatrixKey, bool] = {}
    if agreement is None:
        return out
    for flow in agreement.flows:
        catalogue = catalogues.get(flow.dataset)
        if catalogue is None:
            continue
        where = f"flow {flow.id}"
        permitted = expand_fields(flow.permitted_fields, catalogue, where=where)
        roles = tuple(flow.conditions.requester_roles) or ("*",)
        bg = flow.conditions.break_glass
        extra: list[str] = []
        bg_roles: tuple[str, ...] = ()
        if bg is not None and bg.allowed:
            extra = [
                f
                for f in expand_fields(bg.extra_fields, catalogue, where=where)
                if f not in permitted
            ]
            bg_roles = tuple(bg.roles)
        for party in flow.recipients:
            for role in roles:
                for f in permitted:
                    out[(party, role, flow.dataset, f)] = False
            for role in bg_roles:
                for f in extra:
                    out.setdefault((party, role, flow.dataset, f), True)
    return out


def matrix(
    current: Agreement | None, draft: Agreement, catalogues: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """Party x role x dataset x field: allowed today, under the draft, and whether it changes."""
    today = permissions(current, catalogues)
    after = permissions(draft, catalogues)
    rows = []
    for key in sorted(set(today) | set(after)):
        party, role, dataset, name = key
        before_ok, after_ok = key in today, key in after
        change = "unchanged" if before_ok == after_ok else ("gained" if after_ok else "lost")
        rows.append(
            {
                "party": party,
                "role": role,
                "dataset": dataset,
                "field": name,
                "today": before_ok,
                "draft": after_ok,
                "break_glass": after.get(key, today.get(key, False)),
                "change": change,
            }
        )
    return rows
