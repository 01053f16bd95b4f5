"""The register through the API: entries, one dataset with the agreements that use it and their
usage, and a party's Record of Processing Activities (JSON and CSV); who may see what."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator

import pytest

from broker.agreements.register_view import NOT_RECORDED, ROPA_COLUMNS
from broker.pseudonym_keys import load_pseudonym_keys
from demo.parties import COUNCIL, HOSPITAL
from tests.console.helpers import REPO, safeguarding_entry
from tests.support import LiveBroker, demo_key, live_broker

SAFEGUARDING = "ISA-SAFEGUARDING-CHILDREN"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("register")
    root = tmp / "agreements"
    shutil.copytree(REPO / "agreements" / "examples", root)
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}", demo=True, agreements_dir=root) as b:
        deadline = time.monotonic() + 10
        while b.services.policy_runtime.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        keyring = load_pseudonym_keys(b.settings.pseudonym_key_file)
        for _ in range(3):
            b.services.audit.append(safeguarding_entry(keyring))
        yield b


def token(broker: LiveBroker, client_id: str) -> str:
    return broker.token(client_id, demo_key(client_id))


def test_the_register_lists_verified_entries(demo: LiveBroker) -> None:
    response = demo.get("/v1/register", token(demo, "r9z-governance"))
    assert response.status_code == 200
    by_id = {e["id"]: e for e in response.json()}
    cp = by_id["ccc.child-protection"]
    assert cp["owner"] == COUNCIL
    assert cp["asset_owner_role"] == "Director of Children's Services"
    assert cp["classification"] == "OFFICIAL-SENSITIVE"
    assert cp["open"] is False
    assert by_id["ccc.spending-over-500"]["open"] is True


def test_one_dataset_with_its_agreements_usage_and_review(demo: LiveBroker) -> None:
    response = demo.get("/v1/register/ccc.child-protection", token(demo, "r9z-governance"))
    assert response.status_code == 200
    body = response.json()
    assert "UK GDPR 9(2)(g)" in body["lawful_bases"]
    (row,) = [a for a in body["agreements"] if a["id"] == SAFEGUARDING]
    assert row["exchanges"] == 3
    assert row["flows"] == ["cp-status-to-health-and-police"]
    assert body["next_review"]["source"] == "agreements using it"
    assert body["next_review"]["date"] == row["review_by"]
    assert demo.get("/v1/register/no.such", token(demo, "r9z-governance")).status_code == 404


def test_a_party_outside_the_agreements_sees_the_entry_but_not_their_usage(
    demo: LiveBroker,
) -> None:
    """Stolen governance credentials of a party in no agreement: the entry (metadata) only."""
    key = demo.register("nosy-governance", ("governance",), party="nosy-party")
    nosy = demo.token("nosy-governance", key)
    body = demo.get("/v1/register/ccc.child-protection", nosy).json()
    assert body["agreements"] == []
    assert body["lawful_bases"] == []
    assert demo.get(f"/v1/register/ropa?party={HOSPITAL}", nosy).status_code == 404
    exchange_key = demo.register("nosy-exchange", ("exchange",), party="nosy-party")
    assert demo.get("/v1/register", demo.token("nosy-exchange", exchange_key)).status_code == 403
    assert demo.get("/v1/register").status_code == 401


def test_ropa_of_a_party_as_json_and_csv(demo: LiveBroker) -> None:
    hospital = token(demo, "r9z-governance")
    response = demo.get(f"/v1/register/ropa?party={HOSPITAL}", hospital)
    assert response.status_code == 200
    activities = response.json()["activities"]
    (cp,) = [a for a in activities if a["flow_id"] == "cp-status-to-health-and-police"]
    assert cp["controller_role"] == "recipient"
    assert cp["recipients"] == "Calderbridge City Council"
    assert cp["categories_of_data_subjects"] == NOT_RECORDED
    assert cp["third_country_transfers"] == NOT_RECORDED
    assert "DPIA" in cp["security"]
    assert "child_protection_plan.status" in cp["categories_of_personal_data"]
    csv_response = demo.get(f"/v1/register/ropa?party={HOSPITAL}&format=csv", hospital)
    assert csv_response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_response.text)))
    assert tuple(rows[0]) == ROPA_COLUMNS
    assert len(rows) == len(activities) + 1
    # Only the party's own record; oversight may ask for any party's.
    assert demo.get(f"/v1/register/ropa?party={COUNCIL}", hospital).status_code == 404
    oversight = token(demo, "broker-oversight")
    council = demo.get(f"/v1/register/ropa?party={COUNCIL}", oversight).json()["activities"]
    assert any(a["controller_role"] == "provider" for a in council)
    assert demo.get("/v1/register/ropa?party=x&format=xml", oversight).status_code == 422
    assert demo.get("/v1/register/ropa?party=no-such-party", oversight).status_code == 404
