"""Verification answers are counted per record at the source, whoever asks and by whichever of
the record's identifiers: four council systems asking about one property by its UPRN and by its
council tax account number (in any case) get 5 answers in all, then a 429 naming the limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demo.sources import subjects
from tests.exchange.helpers import admissions, entry, log_size, post
from tests.support import LiveBroker

HOUSEHOLD = subjects.HOUSEHOLD
ACCOUNT = HOUSEHOLD.council_tax_account or ""
CLAIMS = {"address.postcode": HOUSEHOLD.postcode, "address.line1": "3 Linden Close"}
BY_UPRN = {"type": "uprn", "value": HOUSEHOLD.uprn}
BY_ACCOUNT = {"type": "council_tax_account", "value": ACCOUNT}
BY_ACCOUNT_LOWER = {"type": "council_tax_account", "value": ACCOUNT.lower()}
# Every council system asks as an admissions officer under the School Admissions flow.
ASKERS = (
    ("ccc-school-admissions", BY_UPRN),
    ("ccc-school-admissions", BY_ACCOUNT),
    ("ccc-housing-options", BY_UPRN),
    ("ccc-childrens-services", BY_ACCOUNT),
    ("ccc-revenues-benefits", BY_ACCOUNT_LOWER),
)


@pytest.fixture(scope="module", autouse=True)
def bound_as_admissions_officers(broker: LiveBroker) -> Iterator[None]:
    """The council's administrator binds its other systems to the admissions officer's role
    for this module (unbound, each would be refused before the source is asked:
    tests/exchange/test_role_bindings.py): the count per record holds whoever is bound."""
    others = sorted({client for client, _ in ASKERS} - {"ccc-school-admissions"})
    for client in others:
        broker.services.registry.bind(client, "admissions-officer", actor="test")
    yield
    for client in others:
        broker.services.registry.unbind(client, "admissions-officer", actor="test")


def ask(
    broker: LiveBroker, client_id: str, subject: dict[str, str]
) -> tuple[int, dict[str, Any], str]:
    response = post(broker, client_id, admissions(subject=subject, claims=CLAIMS))
    return response.status_code, response.json(), response.headers.get("Retry-After", "")


def test_one_property_gets_five_answers_in_all(broker: LiveBroker) -> None:
    assert ACCOUNT.startswith("CT")
    answered = [ask(broker, client, subject) for client, subject in ASKERS]
    assert [(status, body.get("match")) for status, body, _ in answered] == [(200, True)] * 5

    logged = log_size(broker)
    refused = []
    for client, subject in (*ASKERS, ("ccc-school-admissions", BY_UPRN)):
        status, body, retry_after = ask(broker, client, subject)
        assert status == 429, (client, body)
        assert body["limit"] == "per_record"
        assert "whichever identifier is used and whoever asks" in body["detail"]
        assert "match" not in body  # the source was asked; the answer never left
        assert int(retry_after) >= 1
        refused.append((client, body["exchange_id"]))
    # Each withheld answer is a denied exchange in the log, naming the limit (docs/exchanges.md).
    assert log_size(broker) == logged + len(refused)
    for client, exchange_id in refused:
        logged_entry = entry(broker, exchange_id)
        assert logged_entry["decision"] == "deny"
        assert logged_entry["client_id"] == client
        assert logged_entry["reasons"] == ["refused: verification limit (per_record)"]
        assert logged_entry["source_outcome"] == "ok"
        assert logged_entry["released_fields"] == []


def test_other_properties_are_counted_apart(broker: LiveBroker) -> None:
    other = {"type": "uprn", "value": subjects.CHILD_ON_PLAN_PARENT.uprn}
    status, _, _ = ask(broker, "ccc-housing-options", other)
    assert status == 200
