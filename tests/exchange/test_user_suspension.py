"""People under oversight, over HTTP with two broker instances on one database:
a party's governance client lists every exchange one verified user of its party made (issuer and
subject; never an asserted user of the same name, never another party's), suspends the user
through instance A, and within 2 s instance B refuses the user's exchange (403, logged as a
denied exchange) and token exchange (invalid_grant); reinstated, the user is answered again.
Another party's governance client can neither list nor suspend this party's users."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broker.db.tables import admin_events
from demo.identity import DEMO_ISSUER, register_demo_identity_provider
from demo.parties import HOSPITAL
from tests.exchange.helpers import entry, post, safeguarding
from tests.exchange.test_token_exchange import NURSE, exchange, id_token
from tests.exchange.test_user_restricted_exchange import ask, user_token, without_requested_by
from tests.support import LiveBroker, demo_key, live_broker

OTHER_NURSE = "nurse.patel@r9z.example"
#: Within 2 s everywhere (the snapshot is at most a second old), plus a margin.
HOLDS_WITHIN = 2.1


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, demo_sources: Any
) -> Iterator[tuple[LiveBroker, LiveBroker]]:
    tmp = tmp_path_factory.mktemp("suspension")
    settings: dict[str, Any] = {
        "demo": True,
        "bindings": demo_sources.bindings,
        "rate_limit_per_second": 1000.0,
        "rate_limit_burst": 1000,
    }
    database = f"sqlite:///{tmp / 'broker.db'}"
    with live_broker(tmp, database, **settings) as a:
        register_demo_identity_provider(a.services.identity.store)
        # The second instance of the same deployment: the same public URL (the log's origin).
        with live_broker(tmp, database, public_url=a.settings.public_url, **settings) as b:
            yield a, b


def officer(broker: LiveBroker, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {broker.token(client_id, demo_key(client_id))}"}


def listing(
    broker: LiveBroker, client_id: str, subject: str = NURSE, **params: str
) -> httpx.Response:
    return broker.http.get(
        "/v1/users/exchanges",
        params={"issuer": DEMO_ISSUER, "subject": subject, **params},
        headers=officer(broker, client_id),
    )


def suspension(broker: LiveBroker, client_id: str, path: str, **body: Any) -> httpx.Response:
    payload = {"issuer": DEMO_ISSUER, "subject": NURSE, "reason": "under investigation", **body}
    return broker.http.post(
        f"/v1/users/suspensions{path}", json=payload, headers=officer(broker, client_id)
    )


def admin_actions(broker: LiveBroker) -> list[tuple[str, str, str, dict[str, Any]]]:
    with broker.services.engine.connect() as conn:
        rows = conn.execute(
            select(admin_events.c.actor, admin_events.c.action, admin_events.c.target)
            .add_columns(admin_events.c.details)
            .where(admin_events.c.action.like("user.%"))
            .order_by(admin_events.c.id)
        ).all()
    return [(r.actor, r.action, r.target, dict(r.details)) for r in rows]


def test_governance_lists_one_verified_user_and_suspends_them_everywhere(
    pair: tuple[LiveBroker, LiveBroker],
) -> None:
    a, b = pair
    # The nurse asks on both instances; another nurse, and an asserted user of the same name
    # (an application token; refused, as the flow needs a verified user, and logged), ask too:
    # neither is the nurse.
    mine = []
    for broker in (a, b):
        response = ask(broker, user_token(broker), without_requested_by())
        assert response.status_code == 200, response.text
        mine.append(response.json()["exchange_id"])
    other = ask(b, user_token(b, sub=OTHER_NURSE), without_requested_by())
    assert other.status_code == 200, other.text
    asserted = post(
        a,
        "r9z-ed-safeguarding",
        safeguarding(requested_by={"user_id": NURSE, "role": "safeguarding-nurse"}),
        asserted=True,
    )
    assert asserted.status_code == 403, asserted.text

    listed = listing(a, "r9z-governance")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["suspended"] is False
    assert [e["exchange_id"] for e in body["items"]] == mine[::-1]
    assert {(e["party_id"], e["user_id"]) for e in body["items"]} == {(HOSPITAL, NURSE)}

    # A token B issued before the suspension (B's snapshot may refresh at any moment after it,
    # so a token taken after the suspension could already be refused).
    held_token = user_token(b)
    # Suspended through A: A refuses a token at once, B within 2 s.
    suspended = suspension(a, "r9z-governance", "")
    assert suspended.status_code == 201, suspended.text
    assert suspended.json()["suspended_by"] == "client:r9z-governance"
    assert suspension(a, "r9z-governance", "").status_code == 409
    refused = exchange(a, id_token(a))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"
    assert f"user {NURSE} of party {HOSPITAL} is suspended" in refused.json()["error_description"]

    time.sleep(HOLDS_WITHIN)
    denied = ask(b, held_token, without_requested_by())
    assert denied.status_code == 403, denied.text
    problem = denied.json()
    assert f"user {NURSE} of party {HOSPITAL} is suspended" in problem["detail"]
    logged = entry(b, problem["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["user_id"] == NURSE
    assert logged["details"]["user_issuer"] == DEMO_ISSUER
    assert logged["reasons"] == ["refused: user suspended by their party"]
    assert exchange(b, id_token(b)).json()["error"] == "invalid_grant"
    # The other nurse is not suspended.
    assert ask(b, user_token(b, sub=OTHER_NURSE), without_requested_by()).status_code == 200

    relisted = listing(b, "r9z-governance").json()
    assert relisted["suspended"] is True
    assert relisted["items"][0]["exchange_id"] == problem["exchange_id"]
    assert relisted["items"][0]["decision"] == "deny"
    held = b.http.get("/v1/users/suspensions", headers=officer(b, "r9z-governance")).json()
    assert [(s["party_id"], s["subject"]) for s in held["items"]] == [(HOSPITAL, NURSE)]

    # Reinstated through A: B answers again within 2 s.
    reinstated = suspension(a, "r9z-governance", "/reinstate", reason="cleared")
    assert reinstated.status_code == 200, reinstated.text
    assert suspension(a, "r9z-governance", "/reinstate").status_code == 404
    time.sleep(HOLDS_WITHIN)
    again = ask(b, user_token(b), without_requested_by())
    assert again.status_code == 200, again.text

    actions = admin_actions(a)
    assert [(actor, action, target) for actor, action, target, _ in actions] == [
        ("client:r9z-governance", "user.suspend", HOSPITAL),
        ("client:r9z-governance", "user.reinstate", HOSPITAL),
    ]
    assert actions[0][3] == {
        "issuer": DEMO_ISSUER,
        "subject": NURSE,
        "reason": "under investigation",
    }


def test_another_partys_officer_can_neither_list_nor_suspend(
    pair: tuple[LiveBroker, LiveBroker],
) -> None:
    a, _ = pair
    assert ask(a, user_token(a), without_requested_by()).status_code == 200
    named = listing(a, "ccc-governance", party=HOSPITAL)
    assert named.status_code == 403, named.text
    # Without naming the party, the council's officer sees only the council's exchanges.
    own = listing(a, "ccc-governance")
    assert own.status_code == 200, own.text
    assert own.json()["items"] == []
    assert suspension(a, "ccc-governance", "", party=HOSPITAL).status_code == 403
    listed = a.http.get(
        "/v1/users/suspensions", params={"party": HOSPITAL}, headers=officer(a, "ccc-governance")
    )
    assert listed.status_code == 403, listed.text
    # Oversight may read any party's users, but suspending is the party's own act.
    assert listing(a, "broker-oversight", party=HOSPITAL).json()["items"]
    assert suspension(a, "broker-oversight", "").status_code == 403
    assert ask(a, user_token(a), without_requested_by()).status_code == 200


def test_an_exchange_client_cannot_use_the_users_api(pair: tuple[LiveBroker, LiveBroker]) -> None:
    a, _ = pair
    assert listing(a, "r9z-ed-safeguarding").status_code == 403
    assert suspension(a, "r9z-ed-safeguarding", "").status_code == 403
