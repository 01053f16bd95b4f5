"""Held exchanges (preview gate) on SQLite, and PostgreSQL when configured."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from broker.audit.memory import MemoryAuditLog
from broker.core.pseudonym import Pseudonym
from broker.db import migrate
from broker.subjects.preview import HoldDecided, HoldNotFound, PreviewService

ME = Pseudonym("ab" * 32, "v1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(engine: Engine) -> tuple[PreviewService, MemoryAuditLog, Clock]:
    migrate.upgrade(engine)
    audit, clock = MemoryAuditLog(), Clock()
    return PreviewService(engine, audit, clock), audit, clock


def hold(service: PreviewService, exchange_id: str) -> str:
    return service.hold(
        exchange_id=exchange_id,
        subject=ME,
        requester_party="calderbridge-city-council",
        requester_client="ccc-housing-options",
        requester_user="housing-officer-12",
        agreement_id="ISA-PROOF-REUSE",
        dataset="ccc.proof-documents",
        purpose="homelessness-assessment",
        fields=("document.type", "document.verified_at"),
        ttl_seconds=600,
    ).id


def actions(audit: MemoryAuditLog) -> list[str]:
    return [str(e.details["action"]) for e in audit.entries if e.details]


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "refuse"])
def test_decide_once(setup: tuple[PreviewService, MemoryAuditLog, Clock], approve: bool) -> None:
    service, audit, _ = setup
    hold_id = hold(service, "e-1")
    assert [h.id for h in service.pending_for([ME.value])] == [hold_id]
    decided = service.decide(hold_id, approve=approve, pseudonyms=[ME.value], client_id="portal")
    expected = "approved" if approve else "refused"
    assert decided.status == service.status("e-1").status == expected
    assert service.pending_for([ME.value]) == []
    with pytest.raises(HoldDecided, match=f"already {expected}"):
        service.decide(hold_id, approve=True, pseudonyms=[ME.value], client_id="portal")
    assert actions(audit) == [f"preview.{expected}"]


def test_someone_elses_hold_is_refused(setup: tuple[PreviewService, MemoryAuditLog, Clock]) -> None:
    """As if it did not exist: a citizen learns nothing of another person's hold."""
    service, _, _ = setup
    hold_id = hold(service, "e-2")
    with pytest.raises(HoldNotFound):
        service.decide(hold_id, approve=True, pseudonyms=["cd" * 32], client_id="portal")
    assert service.get(hold_id).status == "held"


def test_expiry_is_logged_once(setup: tuple[PreviewService, MemoryAuditLog, Clock]) -> None:
    service, audit, clock = setup
    hold_id = hold(service, "e-3")
    clock.now += 601
    assert service.get(hold_id).status == "expired"
    assert service.status("e-3").status == "expired"
    assert service.pending_for([ME.value]) == []
    assert actions(audit) == ["preview.expired"]


def test_unknown(setup: tuple[PreviewService, MemoryAuditLog, Clock]) -> None:
    service, _, _ = setup
    with pytest.raises(HoldNotFound):
        service.get("nope")
    with pytest.raises(HoldNotFound):
        service.status("nope")
