"""Fail closed: engine down, audit log failing, source slow or down. Each with its status and
the log entry it must (or, for the log itself, cannot) produce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from broker.policy.engine import Decision, unavailable
from tests.exchange.helpers import entry, log_size, post, safeguarding

DISCHARGE = {
    "agreement_id": "ISA-HOSPITAL-DISCHARGE",
    "purpose": "discharge-to-assess",
    "dataset": "r9z.discharge-summary",
    "subject": {"type": "nhs_number", "value": "9990000115"},
    "requested_by": {"user_id": "asc-worker-3", "role": "social-worker"},
}


@pytest.fixture
def faults(demo_sources: Any) -> Iterator[Any]:
    yield demo_sources.fhir_faults
    demo_sources.fhir_faults.clear()


class DownEngine:
    revision = "down"

    def decide(self, policy_input: Any) -> Decision:
        return unavailable(self.revision, "connection refused")


def test_engine_down_is_503_and_logged(broker: Any) -> None:
    working = broker.services.policy.engine
    broker.services.policy.install(DownEngine())
    try:
        response = post(broker, "r9z-ed-safeguarding", safeguarding())
    finally:
        broker.services.policy.install(working)
    assert response.status_code == 503
    assert "record" not in response.json()
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert "policy engine unavailable" in logged["reasons"]


def test_a_failing_audit_store_is_503_and_releases_nothing(broker: Any) -> None:
    engine = broker.services.audit.engine
    before = log_size(broker)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
    try:
        response = post(broker, "r9z-ed-safeguarding", safeguarding())
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
    assert response.status_code == 503
    assert "record" not in response.json()
    assert "Hartley" not in response.text
    assert log_size(broker) == before


def test_a_slow_source_is_504_and_logged(broker: Any, faults: Any) -> None:
    faults.set("slow", delay_seconds=3.0)
    response = post(broker, "ccc-adult-social-care", DISCHARGE)
    assert response.status_code == 504, response.text
    assert entry(broker, response.json()["exchange_id"])["source_outcome"] == "timeout"


def test_a_failing_source_is_502_and_logged(broker: Any, faults: Any) -> None:
    faults.set("error")
    response = post(broker, "ccc-adult-social-care", DISCHARGE)
    assert response.status_code == 502, response.text
    assert entry(broker, response.json()["exchange_id"])["source_outcome"] == "error"


def test_another_persons_record_is_never_released(broker: Any, faults: Any) -> None:
    faults.set("wrong_person")
    response = post(broker, "ccc-adult-social-care", DISCHARGE)
    assert response.status_code == 502, response.text
    assert "record" not in response.json()
    assert entry(broker, response.json()["exchange_id"])["source_outcome"] == "error"
