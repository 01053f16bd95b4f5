"""Who sees what: a party's officers see an exchange only where their party asked for it or
provided it. The hospital's Caldicott Guardian, a co-signatory of the five-party safeguarding
agreement, tries every surface to see West Calder Police's check on a child (a lookup the hospital
neither asked for nor provided) and finds it only as a number in the agreement's usage by party.
The council (the provider) and oversight still see it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from broker.audit.entry import AgreementRef
from demo.parties import POLICE
from tests.console.helpers import (
    CHILD_NHS,
    Seeded,
    console_broker,
    csrf_of,
    safeguarding_entry,
    sign_in,
)
from tests.support import LiveBroker, demo_key

SAFEGUARDING = "ISA-SAFEGUARDING-CHILDREN"
MASH_CASE = "MASH-9"
MASH_USER = "wcp-mash-officer-4"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded, str]]:
    # The rule's SQL runs on PostgreSQL too in tests/console/test_queries.py.
    with console_broker(tmp_path_factory.mktemp("visibility")) as (broker, seeded):
        keyring = broker.services.subjects.pseudonyms
        police = broker.services.audit.append(
            safeguarding_entry(
                keyring,
                client_id="wcp-mash",
                party_id=POLICE,
                user_id=MASH_USER,
                user_role="mash-officer",
                agreement=AgreementRef(SAFEGUARDING, "1", "sha256:" + "ab" * 32),
                case_reference=MASH_CASE,
                break_glass=True,
                justification="child reported missing overnight",
            )
        )
        broker.services.audit.checkpoint_now()
        yield broker, seeded, police.exchange_id


@pytest.fixture
def caldicott(env: tuple[LiveBroker, Seeded, str]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "r9z-caldicott")
    yield client
    client.close()


def api(broker: LiveBroker, client_id: str, path: str, **params: Any) -> httpx.Response:
    token = broker.token(client_id, demo_key(client_id))
    return broker.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _hidden(text: str, police_id: str) -> None:
    assert police_id not in text
    assert MASH_CASE not in text
    assert MASH_USER not in text


def test_console_search_and_search_by_nhs_number(
    env: tuple[LiveBroker, Seeded, str], caldicott: httpx.Client
) -> None:
    _, seeded, police_id = env
    everything = caldicott.get("/console/exchanges", params={"agreement": SAFEGUARDING})
    assert everything.status_code == 200
    assert seeded.hospital_allow in everything.text  # its own check is there
    _hidden(everything.text, police_id)
    by_party = caldicott.get("/console/exchanges", params={"party": POLICE})
    _hidden(by_party.text, police_id)
    csrf = csrf_of(caldicott.get("/console/exchanges").text)
    found = caldicott.post(
        "/console/exchanges/search", data={"csrf": csrf, "nhs": CHILD_NHS}, follow_redirects=True
    )
    assert found.status_code == 200
    assert seeded.hospital_bg in found.text
    _hidden(found.text, police_id)


def test_console_exchange_page_and_its_proof(
    env: tuple[LiveBroker, Seeded, str], caldicott: httpx.Client
) -> None:
    _, seeded, police_id = env
    assert caldicott.get(f"/console/exchanges/{seeded.hospital_bg}").status_code == 200
    page = caldicott.get(f"/console/exchanges/{police_id}")
    assert page.status_code == 404
    # The same answer as for an id that was never logged; nothing of the check, no proof.
    unknown = "01a25352-0000-7000-8000-000000000000"
    never = caldicott.get(f"/console/exchanges/{unknown}")
    assert page.text.replace(police_id, unknown) == never.text
    assert "inclusion" not in page.text.lower()


def test_break_glass_queue_and_review(
    env: tuple[LiveBroker, Seeded, str], caldicott: httpx.Client
) -> None:
    _, seeded, police_id = env
    queue = caldicott.get("/console/break-glass", params={"status": "all"})
    assert seeded.hospital_bg in queue.text
    _hidden(queue.text, police_id)
    refused = caldicott.post(
        f"/console/break-glass/{police_id}",
        data={"csrf": csrf_of(queue.text), "outcome": "appropriate"},
    )
    assert refused.status_code == 404


def test_console_access_report_and_its_export(
    env: tuple[LiveBroker, Seeded, str], caldicott: httpx.Client
) -> None:
    _, seeded, police_id = env
    csrf = csrf_of(caldicott.get("/console/access-report").text)
    page = caldicott.post(
        "/console/access-report",
        data={"csrf": csrf, "subject_type": "nhs_number", "subject_value": CHILD_NHS},
    )
    assert page.status_code == 200
    assert "Calderbridge Hospitals NHS Foundation Trust" in page.text
    assert "West Calder Police" not in page.text
    _hidden(page.text, police_id)
    request_id = page.text.split("/console/access-report/", 1)[1].split("/", 1)[0]
    for fmt in ("json", "csv", "html"):
        export = caldicott.get(
            f"/console/access-report/{request_id}/export", params={"format": fmt}
        )
        assert export.status_code == 200
        assert POLICE not in export.text
        assert "West Calder Police" not in export.text
        _hidden(export.text, police_id)
    document = caldicott.get(
        f"/console/access-report/{request_id}/export", params={"format": "json"}
    ).json()
    withheld = {w["exchange_id"] for w in document["withheld"]["held_exchanges"]}
    assert seeded.hospital_allow in withheld  # its own, held: listed for its file


def test_api_search_one_entry_and_proof(env: tuple[LiveBroker, Seeded, str]) -> None:
    broker, seeded, police_id = env
    mine = api(
        broker,
        "r9z-governance",
        "/v1/exchanges",
        subject_type="nhs_number",
        subject_value=CHILD_NHS,
    )
    assert mine.status_code == 200
    ids = {i["exchange_id"] for i in mine.json()["items"]}
    assert seeded.hospital_bg in ids
    assert police_id not in ids
    _hidden(mine.text, police_id)
    assert api(broker, "r9z-governance", f"/v1/exchanges/{police_id}").status_code == 404
    for client in ("r9z-governance", "r9z-ed-safeguarding"):
        proof = api(broker, client, "/v1/audit/proof/inclusion", exchange_id=police_id)
        assert proof.status_code == 404, client
        assert "leaf_index" not in proof.text
    # The police prove their own; the council provided the data, so sees and proves it.
    assert api(broker, "wcp-mash", "/v1/audit/proof/inclusion", exchange_id=police_id).is_success
    assert api(broker, "ccc-governance", f"/v1/exchanges/{police_id}").status_code == 200
    assert api(
        broker, "ccc-governance", "/v1/audit/proof/inclusion", exchange_id=police_id
    ).is_success
    assert api(broker, "broker-oversight", f"/v1/exchanges/{police_id}").status_code == 200


def test_api_access_report_as_seen_by_an_officer(env: tuple[LiveBroker, Seeded, str]) -> None:
    broker, seeded, police_id = env
    hospital = api(
        broker,
        "r9z-governance",
        "/v1/subjects/access-report",
        subject_type="nhs_number",
        subject_value=CHILD_NHS,
    )
    assert hospital.status_code == 200
    ids = {e["exchange_id"] for e in hospital.json()["exchanges"]}
    assert seeded.hospital_allow in ids
    assert police_id not in ids
    _hidden(hospital.text, police_id)
    council = api(
        broker,
        "ccc-governance",
        "/v1/subjects/access-report",
        subject_type="nhs_number",
        subject_value=CHILD_NHS,
    ).json()
    assert police_id in {e["exchange_id"] for e in council["exchanges"]}


def test_co_signatories_see_usage_as_counts_by_party_only(
    env: tuple[LiveBroker, Seeded, str], caldicott: httpx.Client
) -> None:
    broker, _, police_id = env
    usage = api(broker, "r9z-governance", f"/v1/agreements/{SAFEGUARDING}/usage")
    assert usage.status_code == 200, usage.text
    body = usage.json()
    police = next(p for p in body["parties"] if p["party_id"] == POLICE)
    assert police["total"] == 1
    assert sum(m["exchanges"] for m in police["months"]) == 1
    hospital = next(p for p in body["parties"] if p["party_id"] == "R9Z")
    assert hospital["total"] == 3  # allowed, break-glass and denied (helpers.seed)
    _hidden(usage.text, police_id)
    assert "subject" not in usage.text
    # An agreement the hospital is not in: nothing to see, not even counts.
    assert api(broker, "r9z-governance", "/v1/agreements/ISA-PROOF-REUSE/usage").status_code == 404
    page = caldicott.get(f"/console/agreements/{SAFEGUARDING}")
    assert page.status_code == 200
    row = page.text.split(f'data-party="{POLICE}"', 1)[1].split("</tr>", 1)[0]
    assert "West Calder Police" in row
    assert row.rstrip().endswith("<td>1</td>")
    _hidden(page.text, police_id)


def test_oversight_keeps_the_whole_log(env: tuple[LiveBroker, Seeded, str]) -> None:
    broker, _, police_id = env
    dpo = sign_in(broker.url, "council-dpo")
    auditor = sign_in(broker.url, "internal-auditor")
    try:
        assert police_id in dpo.get("/console/exchanges", params={"party": POLICE}).text
        assert dpo.get(f"/console/exchanges/{police_id}").status_code == 200
        assert police_id in auditor.get("/console/break-glass", params={"status": "all"}).text
    finally:
        dpo.close()
        auditor.close()
