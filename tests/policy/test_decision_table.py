"""The decision table: every allow path, deny reason and condition, on all three engines.

Engines: ``embedded`` (regopy), ``opa-rest-double`` (the OPA engine over real loopback HTTP
against a
test double of OPA's REST API backed by the embedded engine: no OPA binary can run here) and
``regorus`` (a second, independently written Rego engine, tests only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from broker.policy.engine import GENERIC_REFUSAL, Decision, PolicyEngine
from broker.policy.input import PolicyRequest, build_input
from demo.parties import COUNCIL, GP_RIVERSIDE, HOSPITAL, HOUSING_ASSOCIATION, POLICE
from tests.policy.fixtures import utc

GENERIC = "generic"
SPECIFIC = "specific"

SG = PolicyRequest(
    client_id="r9z-ed-safeguarding",
    party=HOSPITAL,
    user_id="hospital-ed-nurse-17",
    user_role="safeguarding-nurse",
    agreement_id="ISA-SAFEGUARDING-CHILDREN",
    purpose="child-protection-check",
    dataset="ccc.child-protection",
    fields=("name.family", "child_protection_plan.status", "child_protection_plan.category"),
    case_reference="ED-2026-11-0042",
    user_assurance="verified",
)
SG_NOW = "2026-11-10T14:00:00Z"

PROOF = PolicyRequest(
    client_id="ccc-housing-options",
    party=COUNCIL,
    user_id="housing-officer-3",
    user_role="housing-officer",
    agreement_id="ISA-PROOF-REUSE",
    purpose="homelessness-assessment",
    dataset="ccc.proof-documents",
    fields=("document.type", "document.verified_at"),
    consent="given",
    user_assurance="verified",
)

SCHOOL = PolicyRequest(
    client_id="ccc-school-admissions",
    party=COUNCIL,
    user_id="admissions-officer-2",
    user_role="admissions-officer",
    agreement_id="ISA-SCHOOL-ADMISSIONS",
    purpose="school-admission-address-check",
    dataset="ccc.council-tax",
    mode="verify",
    claims=("address.postcode", "address.line1"),
)

DISCHARGE = PolicyRequest(
    client_id="ccc-adult-social-care",
    party=COUNCIL,
    user_id="asc-worker-8",
    user_role="social-worker",
    agreement_id="ISA-HOSPITAL-DISCHARGE",
    purpose="discharge-to-assess",
    dataset="r9z.discharge-summary",
    fields=("admission.date", "discharge.expected_date"),
    user_assurance="verified",
)

OPEN = PolicyRequest(
    client_id="northgate-reporting",
    party=HOUSING_ASSOCIATION,
    user_id="analyst-1",
    user_role="analyst",
    purpose="transparency",
    dataset="ccc.spending-over-500",
)

SG_PERMITTED = (
    "allocated_team.email", "allocated_team.name", "allocated_team.phone",
    "child_protection_plan.category", "child_protection_plan.end_date",
    "child_protection_plan.start_date", "child_protection_plan.status", "date_of_birth",
    "looked_after.status", "name.family", "name.given",
)  # fmt: skip


SG_BREAK_GLASS = ("looked_after.legal_status", "social_worker.name")


@dataclass(frozen=True)
class Case:
    name: str
    request: PolicyRequest
    now: str
    allow: bool
    released: tuple[str, ...] | None = None
    withheld: dict[str, str] | None = None
    reasons: tuple[str, ...] = ()
    """Substrings each expected in some reason."""
    caller: str | None = None
    obligations: dict[str, Any] = field(default_factory=dict)
    basis: str | None = None
    verified: tuple[str, ...] | None = None


def r(base: PolicyRequest, **changes: Any) -> PolicyRequest:
    return dataclasses.replace(base, **changes)


CASES = [
    # ---- safeguarding children: allow paths
    Case("sg-allow-named-fields", SG, SG_NOW, True,
         released=("child_protection_plan.category", "child_protection_plan.status", "name.family"),
         withheld={}, caller=SPECIFIC, basis="agreement",
         obligations={"notify_provider": COUNCIL, "retain_until": dt.date(2026, 12, 10),
                      "review_break_glass": False,
                      "subject_access_hold_until": dt.date(2027, 11, 10)}),
    Case("sg-allow-all-permitted-when-fields-absent", r(SG, fields=None), SG_NOW, True,
         released=SG_PERMITTED, withheld={}),
    Case("sg-wildcard-request-expands", r(SG, fields=("child_protection_plan.*",)), SG_NOW, True,
         released=("child_protection_plan.category", "child_protection_plan.end_date",
                   "child_protection_plan.start_date", "child_protection_plan.status")),
    Case("sg-wildcard-agreement-covers-name", r(SG, fields=("name.given", "name.family")), SG_NOW,
         True, released=("name.family", "name.given")),
    Case("sg-partial-withheld-with-reasons",
         r(SG, fields=("name.given", "social_worker.name", "address.postcode", "nope.field")),
         SG_NOW, True, released=("name.given",),
         withheld={"social_worker.name": "opened only by break-glass",
                   "address.postcode": "not permitted by agreement 'ISA-SAFEGUARDING-CHILDREN'",
                   "nope.field": "not in the catalogue of dataset 'ccc.child-protection'"}),
    Case("sg-gp-allowed", r(SG, client_id="y99901-gp-system", party=GP_RIVERSIDE, user_role="gp"),
         SG_NOW, True),
    Case("sg-police-mash-allowed", r(SG, client_id="wcp-mash", party=POLICE,
                                     user_role="mash-officer"), SG_NOW, True),
    Case("sg-break-glass-opens-extra-fields",
         r(SG, break_glass=True, justification="child unresponsive, parent absent",
           fields=("name.family", "social_worker.name", "looked_after.legal_status")),
         SG_NOW, True,
         released=("looked_after.legal_status", "name.family", "social_worker.name"),
         obligations={"review_break_glass": True, "notify_provider": COUNCIL}),
    Case("sg-break-glass-all-fields", r(SG, fields=None, break_glass=True, justification="urgent"),
         SG_NOW, True,
         released=tuple(sorted((*SG_PERMITTED, *SG_BREAK_GLASS)))),
    # ---- safeguarding children: deny reasons
    Case("sg-nothing-permitted", r(SG, fields=("address.postcode",)), SG_NOW, False,
         reasons=("none of the requested fields is permitted",), caller=SPECIFIC,
         withheld={"address.postcode": "not permitted by agreement 'ISA-SAFEGUARDING-CHILDREN'"}),
    Case("sg-role-refused", r(SG, user_role="receptionist"), SG_NOW, False,
         reasons=("role 'receptionist' may not make requests",), caller=SPECIFIC),
    Case("sg-case-reference-missing", r(SG, case_reference=None), SG_NOW, False,
         reasons=("requires a case reference",), caller=SPECIFIC),
    Case("sg-case-reference-blank", r(SG, case_reference="   "), SG_NOW, False,
         reasons=("requires a case reference",)),
    Case("sg-break-glass-needs-justification", r(SG, break_glass=True), SG_NOW, False,
         reasons=("break-glass needs a justification",)),
    Case("sg-break-glass-role-refused",
         r(SG, client_id="y99901-gp-system", party=GP_RIVERSIDE, user_role="gp",
           break_glass=True, justification="urgent"),
         SG_NOW, False, reasons=("role 'gp' may not use break-glass",)),
    # ---- the person behind the request (the flow's identity)
    Case("sg-asserted-user-refused", r(SG, user_assurance="asserted"), SG_NOW, False,
         reasons=("this flow needs a verified user",), caller=SPECIFIC),
    Case("sg-system-without-person-refused",
         r(SG, user_id="r9z-ed-safeguarding", user_role="", user_assurance="system"), SG_NOW,
         False, reasons=("this flow needs a verified user",)),
    Case("sg-break-glass-asserted-refused",
         r(SG, user_assurance="asserted", break_glass=True, justification="urgent"), SG_NOW,
         False, reasons=("break-glass needs a verified user", "this flow needs a verified user")),
    Case("sg-police-break-glass-asserted-refused",
         r(SG, client_id="wcp-mash", party=POLICE, user_role="mash-officer",
           user_assurance="asserted", break_glass=True, justification="urgent"), SG_NOW, False,
         reasons=("break-glass needs a verified user",)),
    Case("school-system-with-no-person", r(SCHOOL, user_id="ccc-school-admissions",
         user_role="", user_assurance="system"), "2026-11-10T14:00:00Z", True),
    Case("school-asserted-officer-accepted", SCHOOL, "2026-11-10T14:00:00Z", True),
    Case("school-asserted-other-role-refused", r(SCHOOL, user_role="housing-options-officer"),
         "2026-11-10T14:00:00Z", False, reasons=("role 'housing-options-officer' may not",)),
    Case("proof-asserted-user-refused", r(PROOF, user_assurance="asserted"), SG_NOW, False,
         reasons=("this flow needs a verified user",)),
    Case("sg-unknown-agreement", r(SG, agreement_id="ISA-NOPE"), SG_NOW, False,
         reasons=("agreement 'ISA-NOPE' is not in force",), caller=GENERIC),
    Case("sg-non-party-gets-generic-refusal",
         r(SG, client_id="northgate-case", party=HOUSING_ASSOCIATION), SG_NOW, False,
         reasons=("party 'northgate-housing' is not a recipient",), caller=GENERIC),
    Case("sg-provider-party-not-recipient", r(SG, client_id="ccc-childrens-services",
                                              party=COUNCIL), SG_NOW, False,
         reasons=("party 'calderbridge-city-council' is not a recipient",), caller=SPECIFIC),
    Case("sg-purpose-not-covered", r(SG, purpose="marketing"), SG_NOW, False,
         reasons=("purpose 'marketing' is not covered by agreement 'ISA-SAFEGUARDING-CHILDREN'",),
         caller=SPECIFIC),
    Case("sg-dataset-not-covered", r(SG, dataset="ccc.council-tax"), SG_NOW, False,
         reasons=("dataset 'ccc.council-tax' is not covered",)),
    Case("sg-dataset-not-in-register", r(SG, dataset="ccc.nope"), SG_NOW, False,
         reasons=("dataset 'ccc.nope' is not in the information asset register",)),
    Case("sg-verify-on-fetch-flow", r(SG, fields=None, mode="verify", claims=("name.family",)),
         SG_NOW, False, reasons=("does not answer verification questions",)),
    Case("sg-not-yet-in-effect", SG, "2025-12-31T23:30:00Z", False,
         reasons=("takes effect on 2026-01-01",)),
    Case("sg-in-effect-from-uk-midnight", SG, "2026-01-01T00:00:00Z", True),
    Case("sg-no-agreement-named", r(SG, agreement_id=None), SG_NOW, False,
         reasons=("no agreement was named",), caller=GENERIC),
    # ---- proof reuse: consent
    Case("proof-consent-given", PROOF, SG_NOW, True,
         released=("document.type", "document.verified_at"),
         obligations={"notify_provider": None, "retain_until": dt.date(2027, 2, 8),
                      "review_break_glass": False, "subject_access_hold_until": None}),
    Case("proof-consent-none", r(PROOF, consent="none"), SG_NOW, False,
         reasons=("requires recorded consent and none is on record",)),
    Case("proof-consent-withdrawn", r(PROOF, consent="withdrawn"), SG_NOW, False,
         reasons=("the subject has withdrawn it",)),
    Case("proof-consent-not-covering-the-document-types",
         r(PROOF, consent="not_covered", consent_covers=("identity",),
           document_types=("residence", "income")), SG_NOW, False,
         reasons=("agreement 'ISA-PROOF-REUSE' requires consent and the subject's consent covers"
                  " document types identity only; this request is for income, residence",)),
    Case("proof-second-dataset-benefit-claims",
         r(PROOF, dataset="ccc.benefit-claims", fields=None), SG_NOW, True,
         released=("claim.start_date", "claim.status", "claim.type")),
    Case("proof-no-expiry-far-future", PROOF, "2031-05-05T12:00:00Z", True),
    # ---- school admissions: verification-only, office hours
    Case("school-verify-allowed", SCHOOL, SG_NOW, True, released=(), basis="agreement",
         verified=("address.line1", "address.postcode")),
    Case("school-fetch-refused-on-verification-only",
         r(SCHOOL, mode="fetch", claims=(), fields=("address.postcode",)), SG_NOW, False,
         reasons=("is verification-only",)),
    Case("school-claim-not-permitted", r(SCHOOL, claims=("account.band",)), SG_NOW, False,
         reasons=("claim 'account.band' cannot be verified",)),
    Case("school-no-claims", r(SCHOOL, claims=()), SG_NOW, False,
         reasons=("needs at least one claim",)),
    Case("school-saturday-outside-office-hours", SCHOOL, "2026-11-14T10:00:00Z", False,
         reasons=("only in office hours (Mon, Tue, Wed, Thu, Fri 08:00-18:00 UK time); "
                  "it is Sat 10:00 in the UK",)),
    Case("school-weekday-evening-closed", SCHOOL, "2026-11-10T18:00:00Z", False,
         reasons=("it is Tue 18:00 in the UK",)),
    Case("school-summer-time-1730-utc-is-1830-uk", SCHOOL, "2026-07-07T17:30:00Z", False,
         reasons=("it is Tue 18:30 in the UK",)),
    Case("school-summer-time-0730-utc-is-0830-uk", SCHOOL, "2026-07-07T07:30:00Z", True),
    # ---- hospital discharge: office hours across the clock changes, expiry
    Case("dis-spring-saturday-0730-gmt-closed", DISCHARGE, "2026-03-28T07:30:00Z", False,
         reasons=("it is Sat 07:30 in the UK",)),
    Case("dis-spring-sunday-0730-utc-is-0830-bst", DISCHARGE, "2026-03-29T07:30:00Z", True,
         obligations={"retain_until": dt.date(2026, 9, 25)}),
    Case("dis-spring-sunday-1930-utc-is-2030-bst", DISCHARGE, "2026-03-29T19:30:00Z", False,
         reasons=("it is Sun 20:30 in the UK",)),
    Case("dis-spring-saturday-1930-gmt-open", DISCHARGE, "2026-03-28T19:30:00Z", True),
    Case("dis-autumn-saturday-0730-utc-is-0830-bst", DISCHARGE, "2026-10-24T07:30:00Z", True),
    Case("dis-autumn-sunday-0730-gmt-closed", DISCHARGE, "2026-10-25T07:30:00Z", False,
         reasons=("it is Sun 07:30 in the UK",)),
    Case("dis-last-day-evening-bst", DISCHARGE, "2027-03-31T18:30:00Z", True),
    Case("dis-expired-next-day", DISCHARGE, "2027-04-01T09:00:00Z", False,
         reasons=("agreement 'ISA-HOSPITAL-DISCHARGE' expired on 2027-03-31",), caller=SPECIFIC),
    Case("dis-expired-at-uk-midnight-bst", DISCHARGE, "2027-03-31T23:30:00Z", False,
         reasons=("expired on 2027-03-31",)),
    Case("dis-hospital-cannot-pull-its-own-flow",
         r(DISCHARGE, client_id="r9z-discharge", party=HOSPITAL), "2026-06-01T10:00:00Z", False,
         reasons=("party 'R9Z' is not a recipient",), caller=SPECIFIC),
    # ---- revoked and not-yet-effective agreements
    Case("revoked-agreement-denies",
         r(DISCHARGE, agreement_id="ISA-OLD-PILOT", fields=("admission.date",)),
         "2026-06-01T10:00:00Z", False, reasons=("agreement 'ISA-OLD-PILOT' has been revoked",),
         caller=SPECIFIC),
    Case("spd-not-yet-effective",
         PolicyRequest("ccc-revenues-benefits", COUNCIL, "rb-1", "fraud-officer",
                       "single-person-discount-review", "ccc.electoral-register",
                       "ISA-SPD-FRAUD"), "2026-06-01T10:00:00Z", False,
         reasons=("agreement 'ISA-SPD-FRAUD' takes effect on 2027-01-01",)),
    Case("spd-effective-from-2027", PolicyRequest(
        "ccc-revenues-benefits", COUNCIL, "rb-1", "fraud-officer",
        "single-person-discount-review", "ccc.electoral-register", "ISA-SPD-FRAUD",
        user_assurance="verified"),
         "2027-01-04T10:00:00Z", True, released=("address.uprn", "electors.count")),
    # ---- open data
    Case("open-data-needs-no-agreement", OPEN, SG_NOW, True, basis="open-data",
         released=("payment.amount", "payment.date", "payment.department", "payment.purpose",
                   "payment.supplier"),
         obligations={"notify_provider": None, "retain_until": None, "review_break_glass": False},
         caller=SPECIFIC),
    Case("open-data-named-fields-and-unknown",
         r(OPEN, fields=("payment.amount", "payment.secret")), SG_NOW, True,
         released=("payment.amount",),
         withheld={"payment.secret": "not in the catalogue of dataset 'ccc.spending-over-500'"}),
    Case("open-data-verify-refused", r(OPEN, mode="verify", claims=("payment.amount",)), SG_NOW,
         False, reasons=("is open data: fetch it",)),
    Case("open-data-unknown-fields-only", r(OPEN, fields=("payment.secret",)), SG_NOW, False,
         reasons=("none of the requested fields is in the catalogue",)),
]  # fmt: skip


def _decide(engine: PolicyEngine, case: Case) -> Decision:
    return engine.decide(build_input(case.request, utc(case.now)))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(engine: PolicyEngine, case: Case) -> None:
    decision = _decide(engine, case)
    assert decision.allow is case.allow, decision.reasons
    assert decision.revision == engine.revision
    if case.allow:
        assert decision.reasons == ()
    else:
        assert decision.reasons, "a deny always says why"
        assert decision.released_fields == ()
        # The fast allow check and the reason rules agree: never the fallback reason.
        assert "the request does not satisfy the agreement" not in decision.reasons
    for expected in case.reasons:
        assert any(expected in reason for reason in decision.reasons), decision.reasons
    if case.released is not None:
        assert decision.released_fields == case.released
    if case.withheld is not None:
        assert {w.field: w.reason for w in decision.withheld_fields} == case.withheld
    if case.caller == GENERIC:
        assert decision.caller_reasons == (GENERIC_REFUSAL,)
    elif case.caller == SPECIFIC:
        assert decision.caller_reasons == decision.reasons
    for key, value in case.obligations.items():
        assert getattr(decision.obligations, key) == value, key
    if case.basis is not None:
        assert decision.basis == case.basis
    if case.verified is not None:
        assert decision.verified_claims == case.verified
        assert decision.released_fields == ()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engines_agree(
    embedded: PolicyEngine, opa_engine: PolicyEngine, regorus_engine: PolicyEngine, case: Case
) -> None:
    decisions = [_decide(e, case) for e in (embedded, opa_engine, regorus_engine)]
    assert decisions[0] == decisions[1] == decisions[2]


def test_allow_records_matched_flow_for_the_audit_log(embedded: PolicyEngine) -> None:
    decision = embedded.decide(build_input(SG, utc(SG_NOW)))
    assert decision.matched is not None
    assert decision.matched.flow_id == "child-protection-status"
    assert decision.matched.agreement_version == 2
    assert decision.matched.lawful_basis == (
        "UK GDPR 6(1)(e)", "UK GDPR 9(2)(g)", "DPA 2018 Sch 1 para 18",
    )  # fmt: skip
