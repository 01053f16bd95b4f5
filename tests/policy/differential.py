"""Requests for the differential tests: generated from the compiled demo data, and edge cases.

:func:`generated` builds seeded requests: about half a flow's own well-formed request (most of
which are allowed), the rest the same with one or two things changed, chosen to reach every reason
of docs/policy.md. :data:`EDGES` are the strings and instants on which rego-cpp and OPA used to
differ: Unicode whitespace, quotes, control characters, backslashes, far dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Iterator
from typing import Any

from broker.policy.compiled import CompiledAgreement, CompiledFlow, PolicyData
from broker.policy.input import PolicyRequest
from demo.parties import COUNCIL, HOSPITAL
from tests.policy.fixtures import AGREEMENTS, DATASETS

#: One more agreement than the demo's: two flows, each its own dataset and purpose (so a purpose
#: can be the agreement's without being the dataset's), for a user the requesting system names.
HOUSING_SUPPORT = CompiledAgreement(
    id="ISA-HOUSING-SUPPORT",
    version=1,
    digest="sha256:" + "0" * 64,
    parties=(COUNCIL, HOSPITAL),
    effective_from=dt.date(2026, 1, 1),
    expires_on=None,
    flows=(
        CompiledFlow(
            id="benefits-for-discharge",
            dataset="ccc.benefit-claims",
            provider=COUNCIL,
            recipients=(HOSPITAL,),
            purposes=("discharge-planning",),
            lawful_basis=("UK GDPR 6(1)(e)",),
            permitted_fields=("claim.type", "claim.status"),
            retention_days=30,
            identity="asserted",
        ),
        CompiledFlow(
            id="discharge-for-housing",
            dataset="r9z.discharge-summary",
            provider=HOSPITAL,
            recipients=(COUNCIL,),
            purposes=("housing-support",),
            lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(h)"),
            permitted_fields=("discharge.*",),
            identity="asserted",
        ),
    ),
)
DATA = PolicyData((*AGREEMENTS, HOUSING_SUPPORT), DATASETS)

#: Tuesday 9 February 2027, 10:00 UTC (= UK time): every demo agreement but the revoked one and
#: those not yet or no longer in force is in force, and within every flow's office hours.
BASE_NOW = dt.datetime(2027, 2, 9, 10, 0, tzinfo=dt.UTC)
TIMES = (
    dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC),  # before every agreement
    dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC),  # before ISA-SPD-FRAUD, in summer time
    dt.datetime(2026, 11, 10, 18, 30, tzinfo=dt.UTC),  # a Tuesday evening
    dt.datetime(2027, 2, 13, 7, 30, tzinfo=dt.UTC),  # a Saturday morning
    dt.datetime(2027, 2, 14, 20, 30, tzinfo=dt.UTC),  # a Sunday evening
    dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.UTC),  # after ISA-HOSPITAL-DISCHARGE
    dt.datetime(2029, 1, 1, 0, 0, tzinfo=dt.UTC),  # after most
    dt.datetime(2199, 12, 31, 23, 0, tzinfo=dt.UTC),  # the last year allowed
)
UNKNOWN = ("ISA-NOPE", "ccc.nope", "marketing", "northgate-housing", "porter", "x.y", "nope.*")


@dataclasses.dataclass(frozen=True)
class Flow:
    agreement: str
    dataset: str
    purpose: str
    recipients: tuple[str, ...]
    roles: tuple[str, ...]
    fields: tuple[str, ...]
    verify_only: bool
    case_reference: bool
    consent: bool
    identity: str
    break_glass_roles: tuple[str, ...]


def flows(data: dict[str, Any]) -> list[Flow]:
    found = []
    for agreement_id, agreement in sorted(data["isa"]["agreements"].items()):
        for dataset, purposes in sorted(agreement["index"].items()):
            for purpose, by_party in sorted(purposes.items()):
                flow_id = next(iter(by_party.values()))
                flow = agreement["flows"][flow_id]
                found.append(
                    Flow(
                        agreement=agreement_id,
                        dataset=dataset,
                        purpose=purpose,
                        recipients=tuple(sorted(by_party)),
                        roles=tuple(sorted(flow["roles"])) or ("officer",),
                        fields=tuple(sorted(flow["fields"])),
                        verify_only=flow["verification_only"],
                        case_reference=flow["case_reference_required"],
                        consent=flow["consent_required"],
                        identity=flow["identity"],
                        break_glass_roles=tuple(sorted(flow["break_glass"]["roles"])),
                    )
                )
    return found


def _well_formed(rng: random.Random, flow: Flow) -> PolicyRequest:
    fields: tuple[str, ...] | None = None
    claims: tuple[str, ...] = ()
    if flow.verify_only:
        claims = tuple(rng.sample(flow.fields, rng.randint(1, len(flow.fields))))
    elif rng.random() < 0.6:
        fields = tuple(rng.sample(flow.fields, rng.randint(1, len(flow.fields))))
    system = flow.identity == "system" and rng.random() < 0.5
    return PolicyRequest(
        client_id="generated-client",
        party=rng.choice(flow.recipients),
        user_id="generated-client" if system else f"user{rng.randint(1, 9)}@example.org",
        user_role="" if system else rng.choice(flow.roles),
        purpose=flow.purpose,
        dataset=flow.dataset,
        agreement_id=flow.agreement,
        fields=fields,
        mode="verify" if flow.verify_only else "fetch",
        claims=claims,
        case_reference=f"CASE-{rng.randint(100, 999)}" if flow.case_reference else None,
        consent="given" if flow.consent else rng.choice(("none", "given")),
        user_assurance="system" if system else "verified",
    )


Mutation = Callable[[random.Random, PolicyRequest, list[Flow], dict[str, Any]], PolicyRequest]


def _other(rng: random.Random, all_flows: list[Flow], attribute: str) -> str:
    return str(getattr(rng.choice(all_flows), attribute))


def _fields_of(data: dict[str, Any], dataset: str) -> list[str]:
    entry = data["isa"]["datasets"].get(dataset)
    return sorted(entry["fields"]) if entry else ["x.y"]


def _swap(**values: Any) -> Mutation:
    """A mutation setting each attribute to one of its values, chosen at random."""

    def mutate(r: random.Random, q: PolicyRequest, f: list[Flow], d: dict[str, Any]) -> Any:
        return dataclasses.replace(q, **{k: r.choice(v) for k, v in values.items()})

    return mutate


def _other_agreement(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(q, agreement_id=_other(r, f, "agreement"))


def _other_dataset(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(q, dataset=r.choice(["ccc.nope", _other(r, f, "dataset")]))


def _open_data(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    agreement = r.choice([None, q.agreement_id])
    return dataclasses.replace(q, dataset="ccc.spending-over-500", agreement_id=agreement)


def _other_purpose(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    same = [x.purpose for x in f if x.agreement == q.agreement_id]
    return dataclasses.replace(q, purpose=r.choice(["marketing", _other(r, f, "purpose"), *same]))


def _no_claims(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(q, claims=()) if q.mode == "verify" else q


def _consent(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(
        q,
        consent=r.choice(["none", "withdrawn", "not_covered"]),
        consent_covers=("identity",),
        document_types=("identity", "income"),
    )


def _break_glass(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(
        q,
        break_glass=True,
        justification=r.choice([None, "child at risk", "\u3000"]),
        user_role=r.choice(["safeguarding-nurse", "gp", "mash-officer"]),
    )


def _assurance(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(
        q, user_assurance=r.choice(["asserted", "system"]), user_role=r.choice([q.user_role, ""])
    )


def _flip_mode(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    if q.mode == "verify":
        return dataclasses.replace(q, mode="fetch", claims=())
    claims = tuple(r.sample(_fields_of(d, q.dataset), 1)) if r.random() < 0.7 else ()
    return dataclasses.replace(q, mode="verify", fields=None, claims=claims)


def _claims(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    if q.mode != "verify":
        return q
    return dataclasses.replace(q, claims=tuple(r.sample([*_fields_of(d, q.dataset), "x.y"], 2)))


def _fields(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    if q.mode != "fetch":
        return q
    names = [*_fields_of(d, q.dataset), "x.y", "nope.*", "name.*", "address.*"]
    return dataclasses.replace(q, fields=tuple(r.sample(names, r.randint(1, 3))))


def _unknown_fields(r: random.Random, q: PolicyRequest, f: list[Flow], d: Any) -> Any:
    return dataclasses.replace(q, fields=("x.y", "nope.z")) if q.mode == "fetch" else q


MUTATIONS: tuple[Mutation, ...] = (
    _swap(agreement_id=["ISA-NOPE", None, "ISA-OLD-PILOT"]),
    _other_agreement,
    _other_dataset,
    _open_data,
    _other_purpose,
    _swap(party=["northgate-housing", "R9Z", "calderbridge-city-council", "Y99901"]),
    _swap(user_role=["porter", "gp", "receptionist", "mash-officer", "admissions-officer"]),
    _swap(case_reference=[None, "", " \u00a0 "]),
    _consent,
    _break_glass,
    _assurance,
    _flip_mode,
    _claims,
    _no_claims,
    _fields,
    _unknown_fields,
)
"""One thing changed in a request, each towards some of the reasons."""


def generated(
    data: dict[str, Any], count: int, seed: int = 16
) -> Iterator[tuple[PolicyRequest, dt.datetime]]:
    """``count`` seeded requests with the instant each is decided at."""
    rng = random.Random(seed)
    all_flows = flows(data)
    for _ in range(count):
        request = _well_formed(rng, rng.choice(all_flows))
        now = BASE_NOW
        if rng.random() < 0.45:
            for _ in range(rng.randint(1, 2)):
                if rng.random() < 0.15:
                    now = rng.choice(TIMES)
                else:
                    request = rng.choice(MUTATIONS)(rng, request, all_flows, data)
        yield request, now


#: Strings on which rego-cpp and OPA disagreed before the fixes, by class.
WHITESPACE = ("\u00a0", "\u2003", "\u3000", "\u0085", "\u2028", "\u1680", "\u202f", "\u205f")
QUOTED = ('child"protection-check', 'R9Z"', '"')
CONTROL = ("child\x01protection-check", "R9Z\x1f", "ccc.child-protection\x7f", "a\x00b", "x\u200by")
BACKSLASH = ("child\\bprotection-check", "R9Z\\n", "ccc.\\u0041", "\\")
FAR = (
    dt.datetime(2262, 4, 12, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, tzinfo=dt.UTC),
    dt.datetime(1677, 9, 21, tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC),
)


def edges(base: PolicyRequest) -> Iterator[tuple[str, PolicyRequest, dt.datetime]]:
    """Edge requests built on ``base`` (an allowed request whose flow needs a case reference and
    allows break-glass), each with the class it probes."""
    for space in WHITESPACE:
        for text in (space, space * 3, f"{space}CASE-1{space}", f"A{space}B", f"\u200b{space}"):
            yield "whitespace", dataclasses.replace(base, case_reference=text), BASE_NOW
            yield (
                "whitespace",
                dataclasses.replace(base, break_glass=True, justification=text),
                BASE_NOW,
            )
    for kind, values in (("quote", QUOTED), ("control", CONTROL), ("backslash", BACKSLASH)):
        for value in values:
            for name in ("purpose", "dataset", "party", "agreement_id", "user_role", "client_id"):
                yield kind, dataclasses.replace(base, **{name: value}), BASE_NOW
            text = f"{kind} in text"
            yield text, dataclasses.replace(base, case_reference=f"CASE{value}1"), BASE_NOW
            yield text, dataclasses.replace(base, user_id=f"user{value}"), BASE_NOW
    for when in FAR:
        yield "time", base, when
