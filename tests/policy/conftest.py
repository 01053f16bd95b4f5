from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from broker.policy.bundle import build_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import PolicyEngine
from broker.policy.opa import OpaEngine
from broker.policy.regorus_engine import RegorusEngine
from tests.policy.fixtures import DEMO_DATA, policy_modules
from tests.policy.opa_double import OpaRestDouble
from tests.support import LOOPBACK_GUARD


@pytest.fixture(scope="session")
def demo_data() -> dict[str, Any]:
    return compile_data(DEMO_DATA)


@pytest.fixture(scope="session")
def demo_revision(demo_data: dict[str, Any]) -> str:
    bundle, _ = build_bundle(policy_modules(), demo_data)
    return bundle.revision


@pytest.fixture(scope="session")
def embedded(demo_data: dict[str, Any], demo_revision: str) -> EmbeddedEngine:
    return EmbeddedEngine(policy_modules(), demo_data, demo_revision)


@pytest.fixture(scope="session")
def opa_double(embedded: EmbeddedEngine) -> Iterator[OpaRestDouble]:
    with OpaRestDouble(embedded) as server:
        yield server


@pytest.fixture(scope="session")
def opa_engine(opa_double: OpaRestDouble) -> Iterator[OpaEngine]:
    engine = OpaEngine(
        opa_double.url, timeout_seconds=5.0, bundle_name="broker", guard=LOOPBACK_GUARD
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def regorus_engine(demo_data: dict[str, Any], demo_revision: str) -> RegorusEngine:
    return RegorusEngine(policy_modules(), demo_data, demo_revision)


@pytest.fixture(params=["embedded", "opa-rest-double", "regorus"])
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    name = {"embedded": "embedded", "opa-rest-double": "opa_engine", "regorus": "regorus_engine"}
    result: PolicyEngine = request.getfixturevalue(name[request.param])
    return result
