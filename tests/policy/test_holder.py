from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.policy.bundle import PolicyBundle, build_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import GENERIC_REFUSAL, Decision, PolicyEngine
from broker.policy.errors import BundleError
from broker.policy.holder import DecisionCache, PolicyHolder, opa_factory
from broker.policy.input import PolicyRequest, build_input
from broker.policy.regorus_engine import RegorusEngine
from tests.policy.fixtures import CHILD_PROTECTION, DEMO_DATA, policy_modules, utc
from tests.policy.synthetic import synthetic_data
from tests.policy.test_decision_table import CASES, SG, SG_NOW


def _factory(bundle: PolicyBundle) -> PolicyEngine:
    return EmbeddedEngine(bundle.modules, bundle.data, bundle.revision)


def _blob(data: Any, modules: Mapping[str, str] | None = None) -> bytes:
    return build_bundle(modules or policy_modules(), compile_data(data))[1]


@pytest.fixture(scope="module")
def holder() -> PolicyHolder:
    h = PolicyHolder(_factory, require_signature=False)
    h.load(_blob(DEMO_DATA))
    return h


def test_no_bundle_fails_closed() -> None:
    decision = PolicyHolder(_factory).decide(build_input(SG, utc(SG_NOW)))
    assert not decision.allow
    assert decision.reasons[0] == "policy engine unavailable"


def test_non_compiling_policy_is_refused_and_previous_keeps_serving() -> None:
    h = PolicyHolder(_factory, require_signature=False)
    good = h.load(_blob(DEMO_DATA))
    broken = {"policies/sharing.rego": "package sharing\n\ndecision := {{{\n"}
    with pytest.raises(BundleError, match="does not compile"):
        h.load(_blob(DEMO_DATA, broken))
    status = h.status()
    assert status.ready
    assert status.revision == good
    assert status.last_refusal is not None
    assert "does not compile" in status.last_refusal
    assert h.decide(build_input(SG, utc(SG_NOW))).allow


def test_unsigned_bundle_refused_when_signatures_required() -> None:
    h = PolicyHolder(_factory, keys={})
    with pytest.raises(BundleError, match="not signed"):
        h.load(_blob(DEMO_DATA))
    assert h.status().last_refusal is not None
    assert not h.status().ready


class _Gate:
    """An engine that blocks until released, to hold a request in flight across a swap."""

    def __init__(self, inner: PolicyEngine) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    @property
    def revision(self) -> str:
        return self.inner.revision

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        self.entered.set()
        self.release.wait(5)
        return self.inner.decide(policy_input)


def test_in_flight_request_finishes_on_its_revision() -> None:
    h = PolicyHolder(_factory, require_signature=False)
    h.load(_blob(DEMO_DATA))
    assert h.engine is not None
    gate = _Gate(h.engine)
    h.install(gate)
    results: list[Decision] = []
    t = threading.Thread(target=lambda: results.append(h.decide(build_input(SG, utc(SG_NOW)))))
    t.start()
    assert gate.entered.wait(5)
    new_revision = h.load(_blob(synthetic_data(3)))
    gate.release.set()
    t.join(5)
    assert results[0].revision == gate.revision != new_revision
    assert h.decide(build_input(SG, utc(SG_NOW))).revision == new_revision


def test_revocation_denies_at_once_with_1000_agreements() -> None:
    h = PolicyHolder(_factory, require_signature=False)
    h.load(_blob(synthetic_data(1000)))
    policy_input = build_input(SG, utc(SG_NOW))
    assert h.decide(policy_input).allow
    h.revoke("ISA-SAFEGUARDING-CHILDREN")  # before any rebuild
    decision = h.decide(policy_input)
    assert not decision.allow
    assert decision.reasons[0] == "agreement 'ISA-SAFEGUARDING-CHILDREN' has been revoked"
    assert decision.caller_reasons[0].endswith("has been revoked")  # R9Z is a party
    outsider = build_input(
        PolicyRequest(**{**SG.__dict__, "party": "northgate-housing"}), utc(SG_NOW)
    )
    assert h.decide(outsider).caller_reasons == (GENERIC_REFUSAL,)


def test_cache_returns_exactly_what_the_engine_returns() -> None:
    h = PolicyHolder(_factory, require_signature=False, cache=DecisionCache(100))
    h.load(_blob(DEMO_DATA))
    assert h.engine is not None
    engine = h.engine
    for case in CASES:
        policy_input = build_input(case.request, utc(case.now))
        first = h.decide(policy_input)
        second = h.decide(policy_input)
        assert first == second == engine.decide(policy_input)


def test_cache_never_serves_across_revisions() -> None:
    h = PolicyHolder(_factory, require_signature=False, cache=DecisionCache(100))
    h.load(_blob(DEMO_DATA))
    policy_input = build_input(SG, utc(SG_NOW))
    before = h.decide(policy_input)
    h.load(_blob(synthetic_data(2)))
    after = h.decide(policy_input)
    assert before.revision != after.revision


@settings(max_examples=60, deadline=None)
@given(
    fields=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from([*CHILD_PROTECTION.fields, "name.*", "x.y", "looked_after.*"]),
            max_size=6,
        ),
    ),
    break_glass=st.booleans(),
)
def test_nothing_outside_the_agreement_is_ever_released(
    holder: PolicyHolder, fields: list[str] | None, break_glass: bool
) -> None:
    request = PolicyRequest(
        **{
            **SG.__dict__,
            "fields": None if fields is None else tuple(fields),
            "break_glass": break_glass,
            "justification": "urgent" if break_glass else None,
        }
    )
    decision = holder.decide(build_input(request, utc(SG_NOW)))
    flow = compile_data(DEMO_DATA)["isa"]["agreements"]["ISA-SAFEGUARDING-CHILDREN"]["flows"][
        "child-protection-status"
    ]
    allowed = set(flow["fields"]) | (set(flow["break_glass"]["fields"]) if break_glass else set())
    assert set(decision.released_fields) <= allowed
    if fields is not None:
        named = {f for f in fields if not f.endswith(".*")}
        wild = [f[:-1] for f in fields if f.endswith(".*")]
        assert all(
            f in named or any(f.startswith(w) for w in wild) for f in decision.released_fields
        )


def test_holder_serves_the_bundle_it_loaded() -> None:
    h = PolicyHolder(_factory, require_signature=False)
    blob = _blob(DEMO_DATA)
    revision = h.load(blob)
    assert h.current_bundle == (revision, blob)


UNDEFINED_POLICY = {
    "policies/sharing.rego": "package sharing\n\nimport rego.v1\n\ndecision := 1 if input.never\n"
}


@pytest.mark.parametrize("engine_class", [EmbeddedEngine, RegorusEngine], ids=["regopy", "regorus"])
def test_undefined_decision_fails_closed(engine_class: Any) -> None:
    engine = engine_class(UNDEFINED_POLICY, {"isa": {}}, "r-undefined")
    assert engine.evaluate(build_input(SG, utc(SG_NOW))) is None
    decision = engine.decide(build_input(SG, utc(SG_NOW)))
    assert not decision.allow
    assert decision.reasons[0] == "policy engine unavailable"


def test_threads_share_one_compiled_bundle_safely(holder: PolicyHolder) -> None:
    inputs = [build_input(c.request, utc(c.now)) for c in CASES]
    expected = [holder.decide(i) for i in inputs]
    failures: list[str] = []

    def work() -> None:
        for _ in range(3):
            for i, e in zip(inputs, expected, strict=True):
                if holder.decide(i) != e:
                    failures.append(str(i["agreement_id"]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_opa_mode_publishes_bundles_and_asks_opa(opa_engine: PolicyEngine) -> None:
    h = PolicyHolder(opa_factory(opa_engine, EmbeddedEngine.from_bundle), require_signature=False)
    blob = _blob(DEMO_DATA)
    h.load(blob)
    current = h.current_bundle
    assert current is not None
    assert current[1] == blob
    decision = h.decide(build_input(SG, utc(SG_NOW)))
    assert decision.allow
    broken = {"policies/sharing.rego": "package sharing\n\ndecision := {{{\n"}
    with pytest.raises(BundleError, match="does not compile"):
        h.load(_blob(DEMO_DATA, broken))
    assert h.current_bundle == current
