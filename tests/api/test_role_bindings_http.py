"""Role bindings through the admin API (scope ``admin``), over HTTP: each change an admin event
attributed to the administrator's client; a system without the scope cannot bind itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broker.db.tables import admin_events
from tests.support import LiveBroker, live_broker

SG = "ISA-SAFEGUARDING-CHILDREN"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("role-bindings")
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}") as broker:
        key = broker.register("admin-1", ("admin",))
        broker.register("ed-system", ("exchange",), party="R9Z")
        broker.register("ig-office", ("governance",), party="R9Z")
        yield broker, {"Authorization": f"Bearer {broker.token('admin-1', key)}"}


def _events(broker: LiveBroker, action: str) -> list[Any]:
    with broker.services.registry._engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(admin_events)
                .where(admin_events.c.action == action)
                .order_by(admin_events.c.id)
            )
        )


def _client(broker: LiveBroker, auth: dict[str, str], client_id: str) -> dict[str, Any]:
    listed = broker.http.get("/v1/admin/clients", params={"party_id": "R9Z"}, headers=auth)
    assert listed.status_code == 200, listed.text
    return {c["id"]: c for c in listed.json()}[client_id]


def test_an_administrator_binds_and_unbinds(admin: tuple[LiveBroker, dict[str, str]]) -> None:
    broker, auth = admin
    assert _client(broker, auth, "ed-system")["unbound"] is True
    assert _client(broker, auth, "ig-office")["unbound"] is False

    body = {"role": "safeguarding-nurse", "agreement_id": SG}
    response = broker.http.post("/v1/admin/clients/ed-system/roles", json=body, headers=auth)
    assert response.status_code == 201, response.text
    binding = {"role": "safeguarding-nurse", "agreement_id": SG, "flow_id": None}
    assert response.json()["roles"] == [binding]
    assert response.json()["unbound"] is False
    again = broker.http.post("/v1/admin/clients/ed-system/roles", json=body, headers=auth)
    assert again.status_code == 409
    roles = broker.http.get("/v1/admin/clients/ed-system/roles", headers=auth)
    assert roles.json() == [binding]
    assert broker.services.registry.get_client("ed-system").roles[0].agreement_id == SG

    [bound] = _events(broker, "client.bind")
    assert (bound.actor, bound.target) == ("client:admin-1", "ed-system")
    assert bound.details == {"role": "safeguarding-nurse", "agreement": SG, "flow": None}

    # Removing needs the binding exactly as made.
    url = "/v1/admin/clients/ed-system/roles"
    missing = broker.http.delete(url, params={"role": "safeguarding-nurse"}, headers=auth)
    assert missing.status_code == 404
    gone = broker.http.delete(url, params=body, headers=auth)
    assert gone.status_code == 200, gone.text
    assert gone.json()["roles"] == []
    assert gone.json()["unbound"] is True
    [unbound] = _events(broker, "client.unbind")
    assert unbound.actor == "client:admin-1"


@pytest.mark.parametrize(
    ("client_id", "body", "status"),
    [
        ("ig-office", {"role": "gp"}, 422),  # no exchange scope: acts for no role
        ("ed-system", {"role": "gp", "flow_id": "f1"}, 422),  # a flow needs its agreement
        ("ed-system", {"role": "gp", "extra": True}, 422),
        ("no-such-client", {"role": "gp"}, 404),
    ],
)
def test_bad_bindings_are_refused_and_change_nothing(
    admin: tuple[LiveBroker, dict[str, str]], client_id: str, body: dict[str, Any], status: int
) -> None:
    broker, auth = admin
    before = len(_events(broker, "client.bind"))
    url = f"/v1/admin/clients/{client_id}/roles"
    response = broker.http.post(url, json=body, headers=auth)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert len(_events(broker, "client.bind")) == before


def test_a_system_without_the_admin_scope_cannot_bind_itself(
    admin: tuple[LiveBroker, dict[str, str]], tmp_path: Path
) -> None:
    broker, _ = admin
    key = broker.register("r9z-other", ("exchange", "governance"), party="R9Z")
    own = {"Authorization": f"Bearer {broker.token('r9z-other', key)}"}
    url = "/v1/admin/clients/r9z-other/roles"
    response = broker.http.post(url, json={"role": "safeguarding-nurse"}, headers=own)
    assert response.status_code == 403
    assert broker.http.get(url, headers=own).status_code == 403
    assert broker.services.registry.get_client("r9z-other").roles == ()
