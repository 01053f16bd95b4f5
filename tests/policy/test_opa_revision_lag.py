"""With an OPA sidecar, a decision made on a revision behind the bundle served for more than 2 s is
refused ("policy engine unavailable") and the instance is not ready meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.policy.bundle import build_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import ENGINE_UNAVAILABLE
from broker.policy.holder import PolicyHolder, opa_factory
from broker.policy.input import build_input
from broker.policy.opa import OpaEngine
from tests.policy.fixtures import DEMO_DATA, policy_modules, utc
from tests.policy.opa_double import OpaRestDouble
from tests.policy.test_decision_table import SG, SG_NOW
from tests.support import LOOPBACK_GUARD, live_broker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _other_blob() -> bytes:
    """The same agreements under another revision (a later agreement state)."""
    modules = dict(policy_modules())
    modules["policies/extra.rego"] = "package sharing.extra\n\nmarker := true\n"
    return build_bundle(modules, compile_data(DEMO_DATA))[1]


@pytest.fixture
def lagging(embedded: EmbeddedEngine) -> Iterator[tuple[PolicyHolder, OpaRestDouble, FakeClock]]:
    clock = FakeClock()
    with OpaRestDouble(embedded) as double:
        opa = OpaEngine(double.url, timeout_seconds=5, guard=LOOPBACK_GUARD)
        holder = PolicyHolder(
            opa_factory(opa),
            require_signature=False,
            max_revision_lag_seconds=2.0,
            probe=opa.reported_revision,
            clock=clock,
        )
        holder.load(build_bundle(policy_modules(), compile_data(DEMO_DATA))[1])
        yield holder, double, clock
        opa.close()


def test_in_step_the_opa_decision_stands(
    lagging: tuple[PolicyHolder, OpaRestDouble, FakeClock],
) -> None:
    holder, _, clock = lagging
    clock.now += 60
    assert holder.decide(build_input(SG, utc(SG_NOW))).allow
    assert holder.behind() is None


def test_behind_for_more_than_two_seconds_is_refused_and_not_ready(
    lagging: tuple[PolicyHolder, OpaRestDouble, FakeClock],
) -> None:
    holder, double, clock = lagging
    newer = holder.load(_other_blob())
    policy_input: dict[str, Any] = build_input(SG, utc(SG_NOW))
    # OPA has not fetched the new bundle yet: within 2 s its decisions stand.
    clock.now += 1.5
    assert holder.decide(policy_input).allow
    assert holder.behind() is None
    clock.now += 1.0
    decision = holder.decide(policy_input)
    assert not decision.allow
    assert decision.reasons[0] == ENGINE_UNAVAILABLE
    assert decision.caller_reasons == (ENGINE_UNAVAILABLE,)
    assert any("behind" in r for r in decision.reasons)
    reason = holder.behind()
    assert reason is not None
    assert newer in reason
    # OPA fetches the new bundle: the probe sees it, and decisions stand again.
    double.reported_revision = newer
    assert holder.behind() is None
    assert holder.decide(policy_input).allow


def test_an_instance_on_a_lagging_sidecar_is_not_ready(
    tmp_path: Path, embedded: EmbeddedEngine
) -> None:
    with OpaRestDouble(embedded) as double:
        double.reported_revision = "an-old-revision"
        with live_broker(
            tmp_path,
            f"sqlite:///{tmp_path / 'broker.db'}",
            policy_engine="opa",
            opa_url=double.url,
        ) as live:
            holder = live.services.policy
            assert live.http.get("/readyz").json()["checks"]["policy"] == "ok"  # within 2 s
            holder._loaded_at -= 10  # the bundle has been served for 10 s: OPA is late
            answer = live.http.get("/readyz")
            assert answer.status_code == 503
            assert "behind" in answer.json()["checks"]["policy"]
            current = holder.current_bundle
            assert current is not None
            double.reported_revision = current[0]
            assert live.http.get("/readyz").json()["checks"]["policy"] == "ok"
