"""The rule of systems bound to roles (broker/exchange/bindings.py), pure."""

from __future__ import annotations

import pytest

from broker.core.identifiers import RoleBinding
from broker.exchange.bindings import refuse_unbound, unbound_reason
from broker.policy.engine import Decision, MatchedFlow, Obligations

SG, FLOW = "ISA-SAFEGUARDING-CHILDREN", "cp-status-to-health-and-police"
MATCHED = MatchedFlow(SG, 1, "sha256:" + "0" * 64, FLOW, "calderbridge-city-council", ("x",))
ALLOW = Decision(
    allow=True,
    revision="r1",
    basis="agreement",
    released_fields=("child_protection_plan.status",),
    verified_claims=(),
    obligations=Obligations(notify_provider="calderbridge-city-council", review_break_glass=True),
    matched=MATCHED,
)


@pytest.mark.parametrize(
    ("bindings", "reason"),
    [
        ((RoleBinding("safeguarding-nurse"),), None),
        ((RoleBinding("safeguarding-nurse", SG),), None),
        ((RoleBinding("safeguarding-nurse", SG, FLOW),), None),
        ((RoleBinding("gp"), RoleBinding("safeguarding-nurse", SG)), None),
        ((), "system 'c1' is not bound to role 'safeguarding-nurse'"),
        ((RoleBinding("gp"),), "system 'c1' is not bound to role 'safeguarding-nurse'"),
        (
            (RoleBinding("safeguarding-nurse", "ISA-HOSPITAL-DISCHARGE"),),
            f"system 'c1' is not bound to role 'safeguarding-nurse' for agreement {SG} flow {FLOW}",
        ),
        (
            (RoleBinding("safeguarding-nurse", SG, "another-flow"),),
            f"system 'c1' is not bound to role 'safeguarding-nurse' for agreement {SG} flow {FLOW}",
        ),
    ],
)
def test_the_reason_names_the_missing_binding(
    bindings: tuple[RoleBinding, ...], reason: str | None
) -> None:
    assert unbound_reason("c1", bindings, "safeguarding-nurse", SG, FLOW) == reason


def test_an_allow_under_an_unbound_role_becomes_a_deny_releasing_nothing() -> None:
    refused = refuse_unbound(ALLOW, "c1", (RoleBinding("gp"),), "safeguarding-nurse")
    assert not refused.allow
    assert refused.released_fields == ()
    assert refused.caller_reasons == ("system 'c1' is not bound to role 'safeguarding-nurse'",)
    assert refused.reasons == refused.caller_reasons
    assert refused.matched == MATCHED  # the log names the flow asked under
    assert refused.obligations.notify_provider is None
    assert refused.obligations.review_break_glass  # a refused break-glass is still reviewed


def test_a_bound_allow_and_any_deny_are_left_as_they_are() -> None:
    assert (
        refuse_unbound(ALLOW, "c1", (RoleBinding("safeguarding-nurse"),), "safeguarding-nurse")
        is ALLOW
    )
    deny = Decision(allow=False, revision="r1", reasons=("no",), caller_reasons=("no",))
    assert refuse_unbound(deny, "c1", (), "safeguarding-nurse") is deny


def test_open_data_asks_no_role() -> None:
    open_data = Decision(allow=True, revision="r1", basis="open-data", released_fields=("a",))
    assert refuse_unbound(open_data, "c1", (), "anyone") is open_data


def test_a_binding_prints_as_the_cli_gives_it() -> None:
    assert str(RoleBinding("gp")) == "gp"
    assert str(RoleBinding("gp", SG, FLOW)) == f"gp for agreement {SG} flow {FLOW}"


@pytest.mark.parametrize(
    ("bindings", "allowed"),
    [
        ((RoleBinding("admissions-officer", SG),), True),
        ((RoleBinding("admissions-officer"),), True),
        ((RoleBinding("admissions-officer", SG, FLOW),), True),
        ((RoleBinding("admissions-officer", "ISA-SCHOOL-ADMISSIONS"),), False),
        ((RoleBinding("admissions-officer", SG, "another-flow"),), False),
        ((), False),
    ],
)
def test_a_system_asking_for_itself_needs_a_binding_covering_the_flow(
    bindings: tuple[RoleBinding, ...], allowed: bool
) -> None:
    reason = unbound_reason("c1", bindings, "", SG, FLOW)
    if allowed:
        assert reason is None
    else:
        assert reason == (
            f"system 'c1' is bound to no role under agreement {SG} flow {FLOW} "
            "(it asked for itself)"
        )
