"""Impact of a draft before signing: logged requests replayed against it, through the API.

The log is seeded with exchanges under the safeguarding agreement; the draft (version 2) lets
school nurses ask, no longer lets GPs ask, and opens the placement start date. The test counts
the newly allowed and denied requests itself from the log's rows and compares.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broker.audit.entry import AgreementRef, AuditEntry, parse_leaf
from broker.audit.tables import audit_entries
from broker.core.pseudonym import Pseudonym
from tests.exchange.helpers import log_size
from tests.support import LiveBroker, demo_key

REPO = Path(__file__).resolve().parents[2]
CURRENT = REPO / "agreements" / "examples" / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
AGREEMENT = "ISA-SAFEGUARDING-CHILDREN"
PERSONAL = ("nurse-user-0", "MASH-CASE-", "ED-REF-", "a1b2c3d4", "checked at the front desk")


def draft_text() -> str:
    text = CURRENT.read_text(encoding="utf-8")
    text = text.replace("version: 1", "version: 2", 1)
    text = text.replace(
        "requester_roles: [safeguarding-nurse, ed-doctor, gp, mash-officer]",
        "requester_roles: [safeguarding-nurse, ed-doctor, school-nurse, mash-officer]",
    )
    text = text.replace(
        "      - looked_after.status\n",
        "      - looked_after.status\n      - looked_after.placement_start\n",
    )
    assert "school-nurse" in text
    assert "placement_start" in text
    return text


# (party, role, logged decision, requested fields, released fields), each seeded this many times.
SEED: list[tuple[str, str, str, list[str], list[str], int]] = [
    ("R9Z", "safeguarding-nurse", "allow", ["name.family"], ["name.family"], 3),
    (
        "R9Z",
        "safeguarding-nurse",
        "allow",
        ["name.family", "looked_after.placement_start"],
        ["name.family"],
        2,
    ),
    ("R9Z", "school-nurse", "deny", ["name.family"], [], 4),
    (
        "Y99901",
        "gp",
        "allow",
        ["child_protection_plan.status"],
        ["child_protection_plan.status"],
        5,
    ),
    ("west-calder-police", "mash-officer", "allow", ["name.family"], ["name.family"], 2),
    ("west-calder-police", "school-nurse", "deny", ["name.family"], [], 1),
]
CLIENT_OF = {"R9Z": "r9z-ed-safeguarding", "Y99901": "y99901-gp", "west-calder-police": "wcp-mash"}


@pytest.fixture(scope="module")
def seeded(broker: LiveBroker) -> None:
    now_ms = int(broker.services.clock() * 1000)
    n = 0
    for party, role, decision, asked, released, times in SEED:
        for _ in range(times):
            n += 1
            broker.services.audit.append(
                AuditEntry(
                    kind="exchange",
                    time_ms=now_ms - n * 3_600_000,
                    client_id=CLIENT_OF[party],
                    party_id=party,
                    user_id=f"nurse-user-{n}",
                    user_role=role,
                    agreement=AgreementRef(AGREEMENT, "1", "sha256:" + "0" * 64),
                    purpose="child-protection-check",
                    dataset="ccc.child-protection",
                    subject=Pseudonym(f"a1b2c3d4{n:056x}", "v1"),
                    requested_fields=tuple(asked),
                    released_fields=tuple(released),
                    decision=decision,
                    justification="checked at the front desk",
                    case_reference=("MASH-CASE-" if party == "west-calder-police" else "ED-REF-")
                    + str(n),
                    details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
                )
            )
    # One entry older than the period: never replayed.
    broker.services.audit.append(
        AuditEntry(
            kind="exchange",
            time_ms=now_ms - 40 * 86_400_000,
            client_id="y99901-gp",
            party_id="Y99901",
            user_id="nurse-user-old",
            user_role="gp",
            agreement=AgreementRef(AGREEMENT, "1", ""),
            purpose="child-protection-check",
            dataset="ccc.child-protection",
            requested_fields=("name.family",),
            released_fields=("name.family",),
            decision="allow",
            case_reference="ED-REF-old",
            details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
        )
    )


def _token(broker: LiveBroker, client: str) -> str:
    return broker.token(client, demo_key(client))


def start(broker: LiveBroker, client: str, text: str, days: int = 30, **kw: Any) -> Any:
    return broker.http.post(
        "/v1/agreements/impact",
        params={"days": days},
        content=text.encode(),
        headers={"Authorization": f"Bearer {_token(broker, client)}", **kw.get("headers", {})}
        | ({} if "headers" in kw else {"Content-Type": "application/yaml"}),
    )


def run(broker: LiveBroker, client: str, days: int = 30) -> dict[str, Any]:
    response = start(broker, client, draft_text(), days)
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    token = _token(broker, client)
    for _ in range(200):
        got = broker.get(f"/v1/agreements/impact/{job}", token)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        if body["status"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError("the impact run did not finish")


def recount(broker: LiveBroker, days: int = 30) -> dict[str, int]:
    """Newly allowed and denied, counted from the log's rows by the draft's two role changes."""
    now_ms = int(broker.services.clock() * 1000)
    counts = {"newly_allowed": 0, "newly_denied": 0, "requests": 0}
    c = audit_entries.c
    query = select(c.leaf).where(c.kind == "exchange", c.at_ms >= now_ms - days * 86_400_000)
    with broker.services.audit.engine.connect() as conn:
        for (leaf,) in conn.execute(query):
            _, body = parse_leaf(bytes(leaf))
            if (body["agreement"] or {}).get("id") != AGREEMENT:
                continue
            counts["requests"] += 1
            has_case = body["commitments"]["case_reference"] is not None
            if body["decision"] == "deny" and body["user_role"] == "school-nurse" and has_case:
                counts["newly_allowed"] += 1
            if body["decision"] == "allow" and body["user_role"] == "gp":
                counts["newly_denied"] += 1
    return counts


def test_the_impact_of_a_draft_is_what_the_log_says(broker: LiveBroker, seeded: None) -> None:
    before = log_size(broker)
    body = run(broker, "broker-oversight")
    assert body["status"] == "done", body
    totals = body["result"]["totals"]
    expected = recount(broker)
    assert expected == {"newly_allowed": 5, "newly_denied": 5, "requests": 17}
    assert {k: totals[k] for k in expected} == expected
    assert totals["undetermined"] == 0
    groups = {(g["party"], g["role"]): g for g in body["result"]["by_party_and_role"]}
    assert groups[("R9Z", "safeguarding-nurse")]["fields_newly_released"] == {
        "looked_after.placement_start": 2
    }
    assert groups[("Y99901", "gp")]["newly_denied"] == 5
    example = groups[("R9Z", "school-nurse")]["examples"][0]
    assert set(example) >= {"party", "role", "purpose", "dataset", "fields", "day"}
    assert example["change"] == "newly_allowed"
    gained = {
        (r["party"], r["role"], r["field"])
        for r in body["result"]["matrix"]
        if r["change"] == "gained"
    }
    assert ("R9Z", "school-nurse", "name.family") in gained
    assert ("Y99901", "gp", "name.family") not in gained
    lost = {(r["party"], r["role"]) for r in body["result"]["matrix"] if r["change"] == "lost"}
    assert ("Y99901", "gp") in lost
    # One simulation entry per run.
    assert log_size(broker) == before + 1


def test_no_personal_value_appears_in_the_report(broker: LiveBroker, seeded: None) -> None:
    body = run(broker, "broker-oversight")
    text = json.dumps(body)
    for value in PERSONAL:
        assert value not in text
    ids = []
    with broker.services.audit.engine.connect() as conn:
        ids = list(conn.execute(select(audit_entries.c.exchange_id)).scalars())
    assert ids
    assert not [i for i in ids if i in text]


def test_other_parties_requests_are_counts_only(broker: LiveBroker, seeded: None) -> None:
    body = run(broker, "r9z-governance")
    assert body["status"] == "done", body
    groups = body["result"]["by_party_and_role"]
    for g in groups:
        if g["party"] == "R9Z":
            assert g["detailed"] is True
            assert "examples" in g
        else:
            assert g["detailed"] is False
            assert g["role"] == ""
            assert "examples" not in g
            assert "fields_newly_released" not in g
    police = [g for g in groups if g["party"] == "west-calder-police"]
    assert police
    assert sum(g["requests"] for g in police) == 3
    # The provider of the dataset sees every request in detail.
    council = run(broker, "ccc-governance")
    assert all(g["detailed"] for g in council["result"]["by_party_and_role"])


def test_a_run_is_read_only_by_whoever_may(broker: LiveBroker, seeded: None) -> None:
    mine = start(broker, "r9z-governance", draft_text()).json()["job"]
    assert (
        broker.get(f"/v1/agreements/impact/{mine}", _token(broker, "ccc-governance")).status_code
        == 404
    )
    wide = start(broker, "broker-oversight", draft_text()).json()["job"]
    assert (
        broker.get(f"/v1/agreements/impact/{wide}", _token(broker, "r9z-governance")).status_code
        == 404
    )


def test_stolen_partner_credentials_cannot_run_or_read(broker: LiveBroker, seeded: None) -> None:
    """A partner system's credentials (scope exchange) can neither start nor read a run."""
    assert start(broker, "r9z-ed-safeguarding", draft_text()).status_code == 403
    job = start(broker, "broker-oversight", draft_text()).json()["job"]
    got = broker.get(f"/v1/agreements/impact/{job}", _token(broker, "r9z-ed-safeguarding"))
    assert got.status_code == 403


def test_a_draft_the_officers_party_is_not_in_is_refused(broker: LiveBroker) -> None:
    text = (REPO / "agreements" / "examples" / "isa" / "ISA-SPD-FRAUD.yaml").read_text()
    assert start(broker, "r9z-governance", text).status_code == 403


@pytest.mark.parametrize(
    ("text", "days", "status"),
    [
        pytest.param("kind: agreement\nid: X\n", 30, 422, id="invalid-draft"),
        pytest.param(
            "a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(60)), 30, 422, id="aliases"
        ),
        pytest.param(None, 91, 422, id="period-too-long"),
        pytest.param(None, 0, 422, id="period-empty"),
    ],
)
def test_bad_requests_are_refused_with_4xx(
    broker: LiveBroker, text: str | None, days: int, status: int
) -> None:
    response = start(broker, "broker-oversight", draft_text() if text is None else text, days)
    assert response.status_code == status, response.text


def test_a_body_that_is_not_yaml_is_refused(broker: LiveBroker) -> None:
    response = start(broker, "broker-oversight", "{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_simulate_against_a_draft(broker: LiveBroker) -> None:
    token = _token(broker, "r9z-governance")
    body = {
        "as_party": "R9Z",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        "fields": ["name.family"],
        "role": "school-nurse",
        "case_reference": True,
    }
    live = broker.http.post(
        "/v1/policy/simulate",
        json={**body, "agreement_id": AGREEMENT},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert live.json()["decision"]["allow"] is False
    drafted = broker.http.post(
        "/v1/policy/simulate",
        json={**body, "draft": draft_text()},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert drafted.status_code == 200, drafted.text
    assert drafted.json()["decision"]["allow"] is True
    assert drafted.json()["draft"]["version"] == 2
    fraud = (REPO / "agreements" / "examples" / "isa" / "ISA-SPD-FRAUD.yaml").read_text()
    refused = broker.http.post(
        "/v1/policy/simulate",
        json={**body, "draft": fraud},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 403
