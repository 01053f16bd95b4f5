"""The embedded engine's own machinery: the compact verdict, the input conversion, threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.policy.embedded import EmbeddedEngine, decision_from_fast_match, expand_compact
from broker.policy.engine import ENGINE_UNAVAILABLE
from broker.policy.input import build_input
from tests.policy.fixtures import utc
from tests.policy.test_decision_table import CASES

ECHO = "package sharing\n\nimport rego.v1\n\ndecision := input\n"


@pytest.fixture(scope="module")
def echo() -> EmbeddedEngine:
    return EmbeddedEngine({"echo.rego": ECHO}, {}, "r-echo")


# rego-cpp (regopy 1.5.2) writes '"', '\\' and control characters into its JSON output without
# escaping them, with regopy's own converter as with ours: such a result does not parse, and
# ``decide`` fails closed. The property is about every other string.
_TEXT = st.text(
    st.characters(min_codepoint=32, blacklist_categories=("Cs",), blacklist_characters='"\\'),
    max_size=8,
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(value=st.dictionaries(_TEXT, _JSON, max_size=5))
def test_the_policy_sees_exactly_the_input(echo: EmbeddedEngine, value: dict[str, Any]) -> None:
    assert echo.evaluate(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": {1: "a"}}, "keys passed to the policy must be strings"),
        ({"x": {1, 2}}, "cannot pass a set"),
        ({"x": 2**64}, "integer beyond 64 bits"),
    ],
    ids=["non-string-key", "python-set", "integer-beyond-64-bits"],
)
def test_inputs_that_are_not_json_are_refused(
    echo: EmbeddedEngine, value: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        echo.evaluate(value)


@pytest.mark.parametrize(
    "compact",
    [None, {}, {"other": {}}, {"fast": {}, "full": {}}, [], "fast"],
    ids=["undefined", "empty", "unknown-key", "both-keys", "array", "string"],
)
def test_a_compact_verdict_of_unknown_shape_is_passed_on_to_be_refused(compact: Any) -> None:
    assert expand_compact(compact, {}, {}) is compact


def test_a_fast_verdict_naming_an_unknown_flow_fails_closed(demo_data: dict[str, Any]) -> None:
    policy = (
        "package sharing\n\nimport rego.v1\n\ndecision := {}\n\n"
        'compact_decision := {"fast": {"flow_id": "no-such-flow", "released_fields": ["a"],'
        ' "withheld_fields": []}}\n'
    )
    engine = EmbeddedEngine({"p.rego": policy}, demo_data, "r-bad")
    request = next(c for c in CASES if c.allow and c.request.agreement_id).request
    decision = engine.decide(build_input(request, utc("2026-11-10T14:00:00Z")))
    assert decision.allow is False
    assert decision.reasons[0] == ENGINE_UNAVAILABLE


def test_fast_match_is_copied_from_the_flow(demo_data: dict[str, Any]) -> None:
    agreement = demo_data["isa"]["agreements"]["ISA-SAFEGUARDING-CHILDREN"]
    flow_id, flow = next(iter(agreement["flows"].items()))
    match = {"flow_id": flow_id, "released_fields": ["x"], "withheld_fields": []}
    full = decision_from_fast_match(match, demo_data, {"agreement_id": "ISA-SAFEGUARDING-CHILDREN"})
    assert full["matched"]["lawful_basis"] == flow["lawful_basis"]
    assert full["obligations"]["retain_days"] == flow["retention_days"]
    assert full["allow"] is True
    assert full["reasons"] == []
    assert full["released_fields"] == ["x"]


def test_threads_decide_alike(embedded: EmbeddedEngine) -> None:
    inputs = [build_input(c.request, utc(c.now)) for c in CASES]
    expected = [embedded.decide(i) for i in inputs]
    results: dict[int, list[Any]] = {}

    def work(slot: int) -> None:
        results[slot] = [embedded.decide(i) for i in inputs * 3]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        assert got == expected * 3
