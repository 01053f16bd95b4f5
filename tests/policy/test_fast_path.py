"""The fast path of the policy (one rule body for the common allow) against the general one.

``data.sharing.decision`` is ``fast_decision`` when that is defined, else ``full_decision``.
They must never differ where the fast one answers: checked on every case of the decision table and
on random requests, on regopy and on regorus. The embedded engine asks for
``data.sharing.compact_decision`` and fills in the rest in Python (``expand_compact``): that must
give exactly ``data.sharing.decision``, checked on the same requests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import regopy
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.policy.embedded import expand_compact
from broker.policy.input import PolicyRequest, build_input
from tests.policy.fixtures import CHILD_PROTECTION, policy_modules, utc
from tests.policy.test_decision_table import CASES, SG, SG_NOW

RULES = ("sharing/fast_decision", "sharing/full_decision")
ENTRIES = ("sharing/decision", "sharing/compact_decision")


class _Both:
    """Evaluates both rules on regopy and on regorus."""

    def __init__(self, data: dict[str, Any]) -> None:
        import regorus

        builder = regopy.Interpreter()
        for path, source in policy_modules().items():
            builder.add_module(path, source)
        builder.add_data_json(json.dumps(data))
        self.data = data
        self.bundle = builder.build(None, [*RULES, *ENTRIES])
        self.builder = builder
        self.regopy = regopy.Interpreter()
        self.regorus = regorus.Engine()
        for path, source in policy_modules().items():
            self.regorus.add_policy(path, source)
        self.regorus.add_data_json(json.dumps(data))

    def regopy_rule(self, rule: str, policy_input: dict[str, Any]) -> Any:
        self.regopy.set_input(regopy.Input(policy_input))
        text = str(self.regopy.query_bundle_entrypoint(self.bundle, rule))
        return None if text == "undefined" else json.loads(text)["expressions"][0]

    def regorus_rule(self, rule: str, policy_input: dict[str, Any]) -> Any:
        self.regorus.set_input_json(json.dumps(policy_input))
        value = json.loads(self.regorus.eval_rule_as_json("data." + rule.replace("/", ".")))
        return None if value == "<undefined>" else value


@pytest.fixture(scope="module")
def both(demo_data: dict[str, Any]) -> _Both:
    return _Both(demo_data)


def _check(both: _Both, policy_input: dict[str, Any]) -> bool:
    """Asserts agreement; returns whether the fast path answered."""
    fast = both.regopy_rule(RULES[0], policy_input)
    full = both.regopy_rule(RULES[1], policy_input)
    assert fast == both.regorus_rule(RULES[0], policy_input)
    assert full == both.regorus_rule(RULES[1], policy_input)
    assert full is not None
    if fast is not None:
        assert fast == full
    decision = both.regopy_rule(ENTRIES[0], policy_input)
    assert decision == (full if fast is None else fast)
    assert decision == both.regorus_rule(ENTRIES[0], policy_input)
    for compact in (
        both.regopy_rule(ENTRIES[1], policy_input),
        both.regorus_rule(ENTRIES[1], policy_input),
    ):
        assert set(compact) == {"full" if fast is None else "fast"}
        assert expand_compact(compact, both.data, policy_input) == decision
    return fast is not None


def test_fast_path_agrees_on_the_decision_table(both: _Both) -> None:
    answered = [_check(both, build_input(c.request, utc(c.now))) for c in CASES]
    # The fast path does answer the common allows (else this test would prove nothing) and only
    # allows.
    assert sum(answered) >= 15
    assert all(c.allow for c, a in zip(CASES, answered, strict=True) if a)


@settings(max_examples=80, deadline=None)
@given(
    fields=st.one_of(
        st.none(),
        st.lists(st.sampled_from([*CHILD_PROTECTION.fields, "name.*", "x.y"]), max_size=5),
    ),
    role=st.sampled_from(["safeguarding-nurse", "gp", "porter"]),
    party=st.sampled_from(["R9Z", "Y99901", "calderbridge-city-council", "northgate-housing"]),
    case_reference=st.sampled_from([None, "", "ED-1"]),
    break_glass=st.booleans(),
    now=st.sampled_from([SG_NOW, "2025-12-31T23:59:59Z", "2028-01-01T00:00:00Z"]),
    assurance=st.sampled_from(["verified", "asserted", "system"]),
)
def test_fast_path_agrees_on_random_requests(
    both: _Both,
    fields: list[str] | None,
    role: str,
    party: str,
    case_reference: str | None,
    break_glass: bool,
    now: str,
    assurance: str,
) -> None:
    request = PolicyRequest(
        **{
            **SG.__dict__,
            "fields": None if fields is None else tuple(fields),
            "user_role": role,
            "party": party,
            "case_reference": case_reference,
            "break_glass": break_glass,
            "justification": "urgent" if break_glass else None,
            "user_assurance": assurance,
        }
    )
    _check(both, build_input(request, utc(now)))
