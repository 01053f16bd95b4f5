"""The OPA engine against the OPA REST test double (not OPA: no OPA binary runs here)."""

from __future__ import annotations

import socket

import httpx
import pytest

from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import ENGINE_UNAVAILABLE
from broker.policy.input import build_input
from broker.policy.opa import OpaEngine
from tests.policy.fixtures import utc
from tests.policy.opa_double import OpaRestDouble
from tests.policy.test_decision_table import SG, SG_NOW
from tests.support import LOOPBACK_GUARD


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_records_the_revision_opa_reports(embedded: EmbeddedEngine) -> None:
    with OpaRestDouble(embedded, bundle_name="broker") as server:
        engine = OpaEngine(
            server.url, bundle_name="broker", timeout_seconds=5, guard=LOOPBACK_GUARD
        )
        assert engine.healthy()
        decision = engine.decide(build_input(SG, utc(SG_NOW)))
        engine.close()
    assert decision.allow
    assert decision.revision == embedded.revision == engine.revision


def _body_transport(status: int, body: object) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


PROVENANCE = {"bundles": {"broker": {"revision": "rev-1"}}}


@pytest.mark.parametrize(
    ("transport", "detail"),
    [
        (_body_transport(500, {"code": "internal_error"}), "HTTP 500"),
        (_body_transport(200, {"provenance": PROVENANCE}), "undefined"),
        (_body_transport(200, {"result": {"allow": True}, "provenance": PROVENANCE}), "unexpected"),
        (_body_transport(200, {"result": {}}), "no bundle revision"),
        (_body_transport(200, ["not", "an", "object"]), "invalid JSON"),
        (
            httpx.MockTransport(lambda request: httpx.Response(200, content=b"<html>")),
            "invalid JSON",
        ),
    ],
    ids=["http-500", "undefined", "malformed-result", "no-provenance", "array", "not-json"],
)
def test_fails_closed_on_bad_answers(transport: httpx.MockTransport, detail: str) -> None:
    engine = OpaEngine("http://opa.invalid", transport=transport)
    decision = engine.decide(build_input(SG, utc(SG_NOW)))
    assert not decision.allow
    assert decision.reasons[0] == ENGINE_UNAVAILABLE
    assert decision.caller_reasons == (ENGINE_UNAVAILABLE,)
    assert any(detail in r for r in decision.reasons), decision.reasons


def test_fails_closed_when_unreachable() -> None:
    engine = OpaEngine(f"http://127.0.0.1:{_free_port()}", timeout_seconds=1, guard=LOOPBACK_GUARD)
    decision = engine.decide(build_input(SG, utc(SG_NOW)))
    assert not decision.allow
    assert decision.reasons[0] == ENGINE_UNAVAILABLE
    assert not engine.healthy()


def test_fails_closed_on_timeout(embedded: EmbeddedEngine) -> None:
    with OpaRestDouble(embedded) as server:
        server.delay_seconds = 1.0
        engine = OpaEngine(server.url, timeout_seconds=0.1, guard=LOOPBACK_GUARD)
        decision = engine.decide(build_input(SG, utc(SG_NOW)))
        engine.close()
    assert not decision.allow
    assert "did not answer in time" in decision.reasons[1]
