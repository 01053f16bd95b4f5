"""People under oversight in the console (/console/users): a governance officer lists every
exchange one verified user of their party made (issuer and subject; not an asserted user of the
same name, not another party's), suspends and reinstates them (CSRF, an admin event each);
officers of another party can neither list nor suspend; oversight lists but does not suspend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from sqlalchemy import select

from broker.console.accounts import Accounts, Role
from broker.db.tables import admin_events
from broker.pseudonym_keys import load_pseudonym_keys
from demo.parties import COUNCIL, HOSPITAL
from tests.console.helpers import console_broker, csrf_of, safeguarding_entry, sign_in
from tests.support import LiveBroker

ISSUER = "https://smartcard.r9z.nhs.example"
NURSE = "nurse.okoro@r9z.example"
VERIFIED = {"mode": "fetch", "user_verified": True, "user_issuer": ISSUER}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, dict[str, str]]]:
    with console_broker(tmp_path_factory.mktemp("users")) as (broker, _):
        keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
        log = broker.services.audit
        ids = {
            "verified": log.append(
                safeguarding_entry(keyring, user_id=NURSE, details=VERIFIED)
            ).exchange_id,
            "asserted": log.append(
                safeguarding_entry(keyring, user_id=NURSE, details={"user_verified": False})
            ).exchange_id,
            "other_issuer": log.append(
                safeguarding_entry(
                    keyring, user_id=NURSE, details={**VERIFIED, "user_issuer": "https://x.example"}
                )
            ).exchange_id,
            "council": log.append(
                safeguarding_entry(
                    keyring,
                    user_id=NURSE,
                    party_id=COUNCIL,
                    client_id="ccc-housing-options",
                    details=VERIFIED,
                )
            ).exchange_id,
        }
        Accounts(broker.services.engine).add_user(
            "ccc.ig", COUNCIL, Role.GOVERNANCE, "kettle-orchard-violin"
        )
        yield broker, ids


@pytest.fixture(scope="module")
def caldicott(env: tuple[LiveBroker, dict[str, str]]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "r9z-caldicott")
    yield client
    client.close()


USER = {"issuer": ISSUER, "subject": NURSE}


def test_the_officer_lists_only_that_verified_user_of_their_party(
    env: tuple[LiveBroker, dict[str, str]], caldicott: httpx.Client
) -> None:
    page = caldicott.get("/console/users", params=USER)
    assert page.status_code == 200, page.text
    ids = env[1]
    assert ids["verified"] in page.text
    for other in ("asserted", "other_issuer", "council"):
        assert ids[other] not in page.text
    assert "Suspend this user" in page.text


def test_the_officer_suspends_and_reinstates(
    env: tuple[LiveBroker, dict[str, str]], caldicott: httpx.Client
) -> None:
    broker = env[0]
    form = {**USER, "reason": "smartcard reported lost"}
    refused = caldicott.post("/console/users/suspend", data=form)  # no CSRF token
    assert refused.status_code == 403
    csrf = csrf_of(caldicott.get("/console/users", params=USER).text)
    done = caldicott.post("/console/users/suspend", data={**form, "csrf": csrf})
    assert done.status_code == 303, done.text
    assert broker.services.suspensions.get(HOSPITAL, ISSUER, NURSE) is not None
    page = caldicott.get("/console/users", params=USER).text
    assert "smartcard reported lost" in page
    assert "Reinstate this user" in page
    back = caldicott.post("/console/users/reinstate", data={**form, "csrf": csrf})
    assert back.status_code == 303, back.text
    assert broker.services.suspensions.get(HOSPITAL, ISSUER, NURSE) is None
    with broker.services.engine.connect() as conn:
        rows = conn.execute(
            select(admin_events.c.actor, admin_events.c.action, admin_events.c.target).where(
                admin_events.c.action.like("user.%")
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("console:r9z-caldicott", "user.suspend", HOSPITAL),
        ("console:r9z-caldicott", "user.reinstate", HOSPITAL),
    ]


def test_another_partys_officer_can_neither_list_nor_suspend(
    env: tuple[LiveBroker, dict[str, str]],
) -> None:
    with closing(sign_in(env[0].url, "ccc.ig", "kettle-orchard-violin")) as council:
        named = council.get("/console/users", params={**USER, "party": HOSPITAL})
        assert named.status_code == 403, named.text
        own = council.get("/console/users", params=USER)
        assert own.status_code == 200
        assert env[1]["verified"] not in own.text
        assert env[1]["council"] in own.text
        csrf = csrf_of(own.text)
        form = {**USER, "reason": "x", "csrf": csrf}
        assert council.post("/console/users/suspend", data=form).status_code == 303
    # It suspended the council's user of that name, not the hospital's.
    suspensions = env[0].services.suspensions
    assert suspensions.get(HOSPITAL, ISSUER, NURSE) is None
    assert suspensions.get(COUNCIL, ISSUER, NURSE) is not None


def test_oversight_lists_any_party_but_does_not_suspend(
    env: tuple[LiveBroker, dict[str, str]],
) -> None:
    with closing(sign_in(env[0].url, "council-dpo")) as dpo:
        page = dpo.get("/console/users", params={**USER, "party": HOSPITAL})
        assert page.status_code == 200, page.text
        assert env[1]["verified"] in page.text
        assert "Suspend this user" not in page.text
        csrf = csrf_of(page.text)
        refused = dpo.post("/console/users/suspend", data={**USER, "reason": "x", "csrf": csrf})
        assert refused.status_code == 403
