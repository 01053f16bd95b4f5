"""A subject not found at the source is shown as such in the console, never as an allow: in the
exchange list, on the exchange's page and in the access report, for new entries (decision
``not_found``) and for older ones (``allow`` with source outcome ``not_found``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from broker.pseudonym_keys import load_pseudonym_keys
from tests.console.helpers import console_broker, csrf_of, safeguarding_entry, sign_in
from tests.support import LiveBroker

MISSING = "9999990002"
SHOWN = "not found at the source"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, list[str]]]:
    with console_broker(tmp_path_factory.mktemp("not-found")) as (broker, _):
        keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
        subject = keyring.pseudonymise("nhs_number", MISSING)
        new = broker.services.audit.append(
            safeguarding_entry(
                keyring,
                subject=subject,
                decision="not_found",
                source_outcome="not_found",
                released_fields=(),
                released=None,
            )
        )
        old = broker.services.audit.append(  # as logged before not found had its own decision
            safeguarding_entry(keyring, subject=subject, source_outcome="not_found", released=None)
        )
        yield broker, [new.exchange_id, old.exchange_id]


@pytest.fixture(scope="module")
def dpo(env: tuple[LiveBroker, list[str]]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "council-dpo")
    yield client
    client.close()


def test_the_exchange_page_says_not_found(
    env: tuple[LiveBroker, list[str]], dpo: httpx.Client
) -> None:
    for exchange_id in env[1]:
        page = dpo.get(f"/console/exchanges/{exchange_id}")
        assert page.status_code == 200, page.text
        assert f'<span class="badge badge-not_found">{SHOWN}</span>' in page.text
        assert "none (not found at the source)" in page.text
        assert "badge-allow" not in page.text


def test_the_exchange_list_says_not_found(
    env: tuple[LiveBroker, list[str]], dpo: httpx.Client
) -> None:
    page = dpo.get("/console/exchanges", params={"decision": "not_found"})
    assert page.status_code == 200, page.text
    assert env[1][0] in page.text
    assert SHOWN in page.text
    everything = dpo.get("/console/exchanges").text
    for exchange_id in env[1]:
        row = everything[everything.index(exchange_id) :].split("</tr>", 1)[0]
        assert SHOWN in row
        assert "badge-allow" not in row


def test_the_access_report_says_not_found(dpo: httpx.Client) -> None:
    csrf = csrf_of(dpo.get("/console/access-report").text)
    page = dpo.post("/console/access-report", data={"csrf": csrf, "nhs": MISSING})
    assert page.status_code == 200, page.text
    assert page.text.count(f"<td>{SHOWN}</td>") == 2
    assert "child_protection_plan.status" not in page.text
    assert "<td>allow</td>" not in page.text
