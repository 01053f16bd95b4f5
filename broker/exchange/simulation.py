"""Dry runs for governance officers: the live policy's decision for a hypothetical request.

Nothing is fetched or released. Each dry run is logged (kind ``simulation``) with who ran it and
what was asked, so the log shows officers exploring the policy too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from broker.agreements.draft_text import MAX_DRAFT_BYTES
from broker.agreements.model import Agreement
from broker.audit.entry import AuditEntry
from broker.audit.log import AuditLog
from broker.core.errors import InvalidInput
from broker.core.identifiers import RoleBinding
from broker.core.names import IDENTIFIER_PATTERN, instant_problem
from broker.exchange.bindings import refuse_unbound
from broker.exchange.request import NAMES_MAX, Name, name_problems
from broker.policy.engine import Decision, decision_json
from broker.policy.input import Assurance, ConsentStatus, PolicyRequest, build_input

_ID = IDENTIFIER_PATTERN


class Decider(Protocol):
    """What decides a dry run: the live policy, or a draft's policy compiled in memory."""

    def decide(self, policy_input: Mapping[str, Any]) -> Decision: ...


class SimulationRequest(BaseModel):
    """A request as a partner system would make it, with who would make it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_party: str = Field(pattern=_ID, description="the requesting party to imagine")
    as_client: str = Field(default="simulated-client", pattern=_ID)
    agreement_id: str | None = Field(default=None, pattern=_ID)
    purpose: str = Field(pattern=_ID)
    dataset: str = Field(pattern=_ID)
    fields: list[Name] | None = Field(default=None, max_length=NAMES_MAX)
    role: str = Field(default="officer", pattern=_ID)
    mode: Literal["fetch", "verify"] = "fetch"
    claims: list[Name] = Field(default_factory=list, max_length=20)
    case_reference: StrictBool = False
    break_glass: StrictBool = False
    consent: ConsentStatus = "none"
    user_assurance: Assurance = Field(
        default="verified",
        description="how the imagined user is known: verified, asserted, or system (no person)",
    )
    at: dt.datetime | None = Field(
        default=None,
        description="evaluate at this time (default now; UTC when no zone), years 1970-2199",
    )
    draft: str | None = Field(
        default=None,
        max_length=MAX_DRAFT_BYTES,
        description="an unsigned draft agreement (YAML) to simulate against instead of the "
        "agreements in force; agreement_id defaults to the draft's id",
    )

    @field_validator("at")
    @classmethod
    def _bounded(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        at = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        problem = instant_problem(at)
        if problem is not None:
            raise ValueError(problem)
        return value


def decision_view(decision: Decision) -> dict[str, Any]:
    """A dry run's view of the decision (from :func:`broker.policy.engine.decision_json`)."""
    full = decision_json(decision)
    o = full["obligations"]
    return {
        "allow": full["allow"],
        "released_fields": full["released_fields"],
        "withheld_fields": full["withheld_fields"],
        "reasons": full["reasons"],
        "obligations": {
            "notify_provider": o["notify_provider"],
            "retain_until": o["retain_until"],
            "review_break_glass": o["review_break_glass"],
        },
        "matched": full["matched"],
        "policy_revision": full["policy_revision"],
    }


async def simulate(
    policy: Decider,
    audit: AuditLog,
    officer_client: str,
    officer_party: str,
    request: SimulationRequest,
    now: Callable[[], dt.datetime],
    bindings: tuple[RoleBinding, ...] | None = None,
    catalogue: frozenset[str] | None = None,
    draft: Agreement | None = None,
) -> dict[str, Any]:
    """The decision for ``request``, logged. ``bindings``: the roles ``as_client`` is bound to
    where it is a registered system of ``as_party`` (its request under another role is refused,
    as a real one would be); None for an imagined system (the policy alone). ``catalogue``: the
    dataset's field names, as the exchange checks them (before the policy, not logged); None
    when the dataset is not in the register. ``draft``: the unsigned agreement ``policy`` was
    compiled with (named in the log by id, version and digest; a request naming no agreement
    names it).

    Raises InvalidInput for names the exchange would refuse the same way."""
    problems = name_problems(request.fields, request.claims, request.dataset, catalogue)
    if problems:
        raise InvalidInput("the simulated request is not valid", problems)
    at = request.at or now()
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    policy_input = build_input(
        PolicyRequest(
            client_id=request.as_client,
            party=request.as_party,
            user_id="simulation",
            user_role="" if request.user_assurance == "system" else request.role,
            purpose=request.purpose,
            dataset=request.dataset,
            agreement_id=request.agreement_id or (draft.id if draft is not None else None),
            fields=tuple(request.fields) if request.fields is not None else None,
            mode=request.mode,
            claims=tuple(request.claims),
            case_reference="SIMULATED" if request.case_reference else None,
            break_glass=request.break_glass,
            justification="simulation" if request.break_glass else None,
            consent=request.consent,
            user_assurance=request.user_assurance,
        ),
        at,
    )
    decision = await to_thread.run_sync(policy.decide, policy_input)
    if bindings is not None:
        decision = refuse_unbound(decision, request.as_client, bindings, request.role)
    entry = AuditEntry(
        kind="simulation",
        client_id=officer_client,
        party_id=officer_party,
        details={
            "request": request.model_dump(mode="json", exclude={"draft"}),
            "allow": decision.allow,
            "policy_revision": decision.revision,
            **({} if draft is None else {"draft": _draft_ref(draft)}),
        },
    )
    appended = await to_thread.run_sync(audit.append, entry)
    out = {"simulation_id": appended.exchange_id, "decision": decision_view(decision)}
    if draft is not None:
        out["draft"] = _draft_ref(draft)
    return out


def _draft_ref(draft: Agreement) -> dict[str, Any]:
    return {"id": draft.id, "version": draft.version, "digest": draft.digest()}
