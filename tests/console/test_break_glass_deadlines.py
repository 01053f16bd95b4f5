"""Break-glass reviews with deadlines: due ``review_within_days`` after the exchange (from its
agreement version), overdue once the clock passes that, escalated once to the party's webhook,
counted in a gauge and in the monthly report; through the API and the console."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import select

from broker.api.break_glass import escalate
from broker.audit.reviews import DAY_MS, Deadline
from broker.notify.escalation import EVENT_REVIEW_OVERDUE
from broker.notify.tables import outbox
from broker.pseudonym_keys import load_pseudonym_keys
from demo.notify import register_demo_webhook
from demo.parties import HOSPITAL
from demo.sources.runtime import ServerThread
from demo.sources.webhook_receiver import PATH, DemoWebhookReceiver
from tests.console.helpers import REPO, Seeded, csrf_of, safeguarding_entry, seed, sign_in
from tests.support import LiveBroker, demo_key, live_broker

DAY = 86_400.0


@contextmanager
def broker_on(tmp_path: Path, database_url: str) -> Iterator[tuple[LiveBroker, Seeded]]:
    root = tmp_path / "agreements"
    shutil.copytree(REPO / "agreements" / "examples", root)
    with live_broker(
        tmp_path,
        database_url,
        demo=True,
        agreements_dir=root,
        console_sign_in_attempts_per_window=1000,
    ) as broker:
        deadline = time.monotonic() + 10
        while broker.services.policy_runtime.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
        yield broker, seed(broker.services.audit, keyring)


def _reviews(broker: LiveBroker, client_id: str = "r9z-governance") -> list[dict[str, object]]:
    token = broker.token(client_id, demo_key(client_id))
    response = broker.get("/v1/break-glass/reviews", token)
    assert response.status_code == 200, response.text
    return list(response.json()["reviews"])


def _escalations(broker: LiveBroker) -> list[tuple[str, str, str]]:
    o = outbox.c
    with broker.services.engine.connect() as conn:
        rows = conn.execute(
            select(o.exchange_id, o.party_id, o.payload).where(o.event_type == EVENT_REVIEW_OVERDUE)
        ).all()
    return [(r.exchange_id, r.party_id, r.payload) for r in rows]


def _gauge(broker: LiveBroker, agreement: str) -> float | None:
    for line in broker.http.get("/metrics").text.splitlines():
        if line.startswith(f'broker_break_glass_reviews_overdue{{agreement="{agreement}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_for(condition: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError("the escalation job did not run")


def test_a_review_becomes_overdue_when_the_clock_moves(tmp_path: Path, database_url: str) -> None:
    with (
        broker_on(tmp_path, database_url) as (broker, seeded),
        closing(sign_in(broker.url, "r9z-caldicott")) as caldicott,
    ):
        # Before the deadline: due, not overdue, nothing escalated.
        (item,) = [r for r in _reviews(broker) if r["exchange_id"] == seeded.hospital_bg]
        assert item["state"] == "outstanding"
        assert item["agreement_id"] == "ISA-SAFEGUARDING-CHILDREN"
        page = caldicott.get("/console/break-glass").text
        assert 'data-state="due"' in page
        assert 'data-state="overdue"' not in page

        # ISA-SAFEGUARDING-CHILDREN v1 gives 2 days: move the clock 3 days on.
        broker.clock.offset = 3 * DAY
        (item,) = [r for r in _reviews(broker) if r["exchange_id"] == seeded.hospital_bg]
        assert item["state"] == "overdue"
        page = caldicott.get("/console/break-glass").text
        assert 'data-state="overdue"' in page

        # The job escalates it once to the hospital (whose user broke glass) and sets the gauge.
        _wait_for(lambda: _escalations(broker))
        _wait_for(lambda: _gauge(broker, "ISA-SAFEGUARDING-CHILDREN") == 1.0)
        broker.clock.offset = 4 * DAY  # a later round escalates nothing again
        time.sleep(2.5)
        escalated = _escalations(broker)
        assert [(e, p) for e, p, _ in escalated] == [(seeded.hospital_bg, HOSPITAL)]
        payload = json.loads(escalated[0][2])
        assert payload["agreement_id"] == "ISA-SAFEGUARDING-CHILDREN"
        assert set(payload) == {
            "exchange_id",
            "agreement_id",
            "dataset",
            "requesting_party",
            "occurred_at",
            "review_due",
            "summary",
        }

        # Reviewed now (late): no longer pending, the gauge falls, the report counts it late.
        form = caldicott.get("/console/break-glass").text
        answer = caldicott.post(
            f"/console/break-glass/{seeded.hospital_bg}",
            data={"outcome": "appropriate", "note": "", "csrf": csrf_of(form)},
        )
        assert answer.status_code == 303
        assert seeded.hospital_bg not in [r["exchange_id"] for r in _reviews(broker)]
        broker.clock.offset = 5 * DAY
        _wait_for(lambda: _gauge(broker, "ISA-SAFEGUARDING-CHILDREN") == 0.0)
        report = caldicott.get("/console/reports").text
        row = report.split('id="break-glass-reviews"')[1].split("ISA-SAFEGUARDING-CHILDREN")[1]
        cells = row.split("</tr>")[0]
        assert cells.startswith("</th><td>0</td><td>1</td><td>0</td><td>0</td>"), cells


def test_a_party_outside_the_agreement_sees_no_deadline(tmp_path: Path, database_url: str) -> None:
    """Stolen governance credentials of another party: no review of the hospital's shows."""
    with broker_on(tmp_path, database_url) as (broker, seeded):
        key = broker.register("stranger-governance", ("governance",), party="stranger-party")
        token = broker.token("stranger-governance", key)
        response = broker.get("/v1/break-glass/reviews", token)
        assert response.status_code == 200
        assert response.json()["reviews"] == []
        # An exchange client may not read the queue at all; a bad status is refused.
        exchange_key = broker.register("stranger-exchange", ("exchange",), party="stranger-party")
        exchange_token = broker.token("stranger-exchange", exchange_key)
        assert broker.get("/v1/break-glass/reviews", exchange_token).status_code == 403
        assert broker.get("/v1/break-glass/reviews?status=odd", token).status_code == 422
        assert seeded.hospital_bg in [r["exchange_id"] for r in _reviews(broker)]


def test_deadline_states() -> None:
    d = Deadline("x", "A", "p", "ds", at_ms=0, due_ms=2 * DAY_MS, reviewed_ms=None)
    assert d.state(2 * DAY_MS) == "outstanding"
    assert d.state(2 * DAY_MS + 1) == "overdue"
    reviewed = Deadline("x", "A", "p", "ds", at_ms=0, due_ms=2 * DAY_MS, reviewed_ms=2 * DAY_MS)
    assert reviewed.state(10 * DAY_MS) == "on_time"
    late = Deadline("x", "A", "p", "ds", 0, 2 * DAY_MS, 2 * DAY_MS + 1)
    assert late.state(0) == "late"


def test_register_usage_and_who_sees_it(tmp_path: Path, database_url: str) -> None:
    """The register's usage counts on both databases; in the console an agreement admin sees the
    register, and an officer of a party outside an agreement sees neither it nor its usage."""
    with (
        broker_on(tmp_path, database_url) as (broker, _),
        closing(sign_in(broker.url, "council-isa-admin")) as admin,
        closing(sign_in(broker.url, "r9z-caldicott")) as caldicott,
    ):
        body = broker.get(
            "/v1/register/ccc.child-protection",
            broker.token("r9z-governance", demo_key("r9z-governance")),
        ).json()
        (row,) = [a for a in body["agreements"] if a["id"] == "ISA-SAFEGUARDING-CHILDREN"]
        assert row["exchanges"] == 3  # seeded: an allow, a break-glass, a deny
        page = admin.get("/console/register/ccc.child-protection")
        assert page.status_code == 200
        assert "ISA-SAFEGUARDING-CHILDREN" in page.text
        assert admin.get("/console/register").status_code == 200
        # The hospital is no party to ISA-PROOF-REUSE: the entry shows, its agreement does not.
        proof = caldicott.get("/console/register/ccc.proof-documents")
        assert proof.status_code == 200
        assert "ISA-PROOF-REUSE" not in proof.text
        assert "ISA-PROOF-REUSE" in admin.get("/console/register/ccc.proof-documents").text
        assert caldicott.get("/console/register/no.such").status_code == 404


def test_the_escalation_is_delivered_once_to_the_partys_webhook(
    tmp_path: Path, database_url: str
) -> None:
    """A break-glass exchange made three days ago: one signed webhook event reaches the
    hospital, however often the job runs."""
    threads = ServerThread()
    receiver = DemoWebhookReceiver()
    receiver.url = threads.serve(receiver.app()) + PATH
    try:
        with broker_on(tmp_path, database_url) as (broker, _):
            register_demo_webhook(
                broker.services.notifications.webhooks,
                receiver.url,
                receiver.secret,
                party_id=HOSPITAL,
            )
            keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
            three_days_ago = int((time.time() - 3 * DAY) * 1000)
            old = broker.services.audit.append(
                safeguarding_entry(
                    keyring,
                    break_glass=True,
                    justification="child collapsed",
                    time_ms=three_days_ago,
                )
            )
            first = escalate(broker.services)
            assert old.exchange_id in first.escalated
            assert escalate(broker.services).escalated == []

            def delivered() -> list[dict[str, object]]:
                return [
                    e
                    for e in receiver.snapshot()
                    if e["type"] == EVENT_REVIEW_OVERDUE
                    and e["data"]["exchange_id"] == old.exchange_id  # type: ignore[index]
                ]

            _wait_for(lambda: delivered())
            time.sleep(1.0)
            (event,) = delivered()
            assert event["data"]["requesting_party"] == HOSPITAL  # type: ignore[index]
            assert receiver.rejected == 0
    finally:
        threads.stop()
