"""The citizen's access report and preview holds over real HTTP, with held-back safeguarding
entries (audit entries are appended straight to the log, as the exchange pipeline would)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.search import SearchFilters, search
from broker.core.nhs_number import test_number as synthetic_nhs
from broker.subjects.preview import HoldDecided
from tests.support import PORTAL, LiveBroker, citizen_token, demo_key, live_broker

DAY = 86400
CITIZEN = synthetic_nhs(201)
NEIGHBOUR = synthetic_nhs(202)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("access")
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}", demo=True) as live:
        yield live


def token(live: LiveBroker, client_id: str) -> str:
    # The broker's clock may be moved forward; the assertion must be made at the broker's time.
    if client_id == PORTAL:  # the citizen's own token, exchanged by the portal
        return citizen_token(live, CITIZEN)
    return live.token(client_id, demo_key(client_id), now=live.clock())


def ref(live: LiveBroker, agreement_id: str) -> AgreementRef:
    last = live.services.policy_runtime.last
    assert last is not None
    a = next(v.agreement for v in last.active() if v.agreement and v.agreement.id == agreement_id)
    assert a is not None
    return AgreementRef(a.id, str(a.version), a.digest())


def exchange(
    live: LiveBroker,
    *,
    days_ago: int,
    agreement: str,
    party: str,
    dataset: str,
    purpose: str,
    subject: tuple[str, str] = ("nhs_number", CITIZEN),
    released: tuple[str, ...] = ("name.family",),
) -> str:
    pseudonym = live.services.subjects.pseudonyms.pseudonymise(*subject)
    entry = AuditEntry(
        kind="exchange",
        time_ms=int((live.clock() - days_ago * DAY) * 1000),
        client_id="r9z-ed-safeguarding",
        party_id=party,
        user_id="hospital-ed-nurse-17",
        user_role="safeguarding-nurse",
        agreement=ref(live, agreement),
        purpose=purpose,
        lawful_basis=("UK GDPR 6(1)(e)",),
        dataset=dataset,
        subject=pseudonym,
        released_fields=released,
        decision="allow",
        case_reference="ED-2026-11-0042",
        justification="child attended ED with injuries",
    )
    return live.services.audit.append(entry).exchange_id


@pytest.fixture(scope="module")
def entries(demo: LiveBroker) -> dict[str, str]:
    safeguarding = {
        "agreement": "ISA-SAFEGUARDING-CHILDREN",
        "party": "R9Z",
        "dataset": "ccc.child-protection",
        "purpose": "child-protection-check",
    }
    reuse = {
        "agreement": "ISA-PROOF-REUSE",
        "party": "calderbridge-city-council",
        "dataset": "ccc.proof-documents",
        "purpose": "homelessness-assessment",
    }
    return {
        "old_check": exchange(demo, days_ago=400, **safeguarding),
        "recent_check": exchange(demo, days_ago=10, **safeguarding),
        "reuse": exchange(demo, days_ago=5, released=("document.type",), **reuse),
        "neighbour": exchange(demo, days_ago=3, subject=("nhs_number", NEIGHBOUR), **reuse),
        "household": exchange(demo, days_ago=2, subject=("uprn", "100070000001"), **reuse),
    }


def report(live: LiveBroker, client_id: str, **params: str) -> Any:
    query = {"subject_type": "nhs_number", "subject_value": CITIZEN, **params}
    return live.get("/v1/subjects/access-report", token(live, client_id), params=query)


def ids(body: dict[str, Any]) -> list[str]:
    return [e["exchange_id"] for e in body["exchanges"]]


def test_the_citizen_sees_their_exchanges_but_not_held_ones(
    demo: LiveBroker, entries: dict[str, str]
) -> None:
    response = report(demo, "ccc-citizen-portal")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["view"] == "subject"
    assert ids(body) == [entries["old_check"], entries["reuse"]]
    assert "held_back" not in body  # the citizen is not told that something is held
    line = body["exchanges"][1]
    assert line["organisation"] == "calderbridge-city-council"
    assert line["organisation_name"] == "Calderbridge City Council"
    assert line["released_fields"] == ["document.type"]
    assert line["lawful_basis"] == ["UK GDPR 6(1)(e)"]
    # Nothing about other people: not the nurse, not the case, not the justification.
    for secret in ("hospital-ed-nurse-17", "ED-2026-11-0042", "injuries", NEIGHBOUR):
        assert secret not in response.text


def test_governance_sees_held_entries_marked_within_its_party(
    demo: LiveBroker, entries: dict[str, str]
) -> None:
    council = report(demo, "ccc-governance").json()
    assert ids(council) == [entries["old_check"], entries["recent_check"], entries["reuse"]]
    held = {h["exchange_id"]: h for h in council["held_back"]}
    assert list(held) == [entries["recent_check"]]
    assert held[entries["recent_check"]]["hold_reason"] == "subject access hold of 365 days"
    hospital = report(demo, "r9z-governance").json()
    assert ids(hospital) == [entries["old_check"], entries["recent_check"]]


def test_a_held_entry_is_shown_once_the_hold_ends(
    demo: LiveBroker, entries: dict[str, str]
) -> None:
    demo.clock.offset += 360 * DAY
    try:
        assert entries["recent_check"] in ids(report(demo, "ccc-citizen-portal").json())
    finally:
        demo.clock.offset -= 360 * DAY


def test_each_read_is_logged_with_what_was_held_back(
    demo: LiveBroker, entries: dict[str, str]
) -> None:
    assert report(demo, "ccc-citizen-portal").status_code == 200
    reads = search(demo.services.engine, SearchFilters(kind="audit-read"), limit=20).items
    latest = next(r for r in reads if r["details"]["resource"] == "access-report")
    assert latest["client_id"] == "ccc-citizen-portal"
    assert latest["details"]["held_back"][0]["exchange_id"] == entries["recent_check"]
    assert CITIZEN not in str(latest)


@pytest.mark.parametrize(
    ("client_id", "params", "status", "location"),
    [
        pytest.param(
            "ccc-citizen-portal",
            {"subject_type": "uprn", "subject_value": "100070000001"},
            422,
            "subject_type",
            id="household-identifier",
        ),
        pytest.param(
            "ccc-citizen-portal", {"subject_value": "9434765918"}, 422, "subject_value", id="bad"
        ),
        pytest.param("r9z-ed-safeguarding", {}, 403, None, id="exchange-scope"),
    ],
)
def test_refusals(
    demo: LiveBroker, client_id: str, params: dict[str, str], status: int, location: str | None
) -> None:
    response = report(demo, client_id, **params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if location:
        assert [e["location"] for e in response.json()["errors"]] == [location]


# --- preview holds -------------------------------------------------------------------------


def hold(live: LiveBroker, exchange_id: str) -> str:
    held = live.services.subjects.previews.hold(
        exchange_id=exchange_id,
        subject=live.services.subjects.pseudonyms.pseudonymise("nhs_number", CITIZEN),
        requester_party="calderbridge-city-council",
        requester_client="ccc-housing-options",
        requester_user="housing-officer-12",
        agreement_id="ISA-PROOF-REUSE",
        dataset="ccc.proof-documents",
        purpose="homelessness-assessment",
        fields=("document.type",),
        ttl_seconds=3600,
    )
    return held.id


def decide(live: LiveBroker, hold_id: str, decision: str, nhs: str = CITIZEN) -> Any:
    return live.http.post(
        f"/v1/subjects/previews/{hold_id}/decision",
        json={"decision": decision, "subject": {"type": "nhs_number", "value": nhs}},
        headers={"Authorization": f"Bearer {token(live, 'ccc-citizen-portal')}"},
    )


def test_the_citizen_approves_a_held_exchange_once(demo: LiveBroker) -> None:
    hold_id = hold(demo, "0190f0a8-0000-7000-8000-0000000000a1")
    pending = demo.get(
        "/v1/subjects/previews",
        token(demo, "ccc-citizen-portal"),
        params={"subject_type": "nhs_number", "subject_value": CITIZEN},
    ).json()["items"]
    assert hold_id in [p["id"] for p in pending]
    assert decide(demo, hold_id, "approve", NEIGHBOUR).status_code == 403
    approved = decide(demo, hold_id, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    exchange_id = "0190f0a8-0000-7000-8000-0000000000a1"
    assert demo.services.subjects.previews.status(exchange_id).status == "approved"
    assert decide(demo, hold_id, "refuse").status_code == 409


def test_an_undecided_hold_expires_and_is_logged(demo: LiveBroker) -> None:
    hold_id = hold(demo, "0190f0a8-0000-7000-8000-0000000000a2")
    demo.clock.offset += 2 * 3600
    try:
        assert demo.services.subjects.previews.get(hold_id).status == "expired"
        with pytest.raises(HoldDecided, match="already expired"):
            _decide_own(demo, hold_id)
    finally:
        demo.clock.offset -= 2 * 3600
    actions = [
        e["details"]["action"]
        for e in search(demo.services.engine, SearchFilters(kind="admin"), limit=50).items
        if e["details"] and str(e["details"].get("action", "")).startswith("preview.")
    ]
    assert "preview.expired" in actions
    assert "preview.approved" in actions


def _decide_own(live: LiveBroker, hold_id: str) -> None:
    pseudonyms = [
        p.value for p in live.services.subjects.pseudonyms.all_pseudonyms("nhs_number", CITIZEN)
    ]
    live.services.subjects.previews.decide(
        hold_id, approve=True, pseudonyms=pseudonyms, client_id="ccc-citizen-portal"
    )
