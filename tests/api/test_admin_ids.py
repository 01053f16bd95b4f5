"""Every admin route answers a malformed party (or client) id with 422 and a problem naming the
field: the id is checked by the route's request model before any store sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute

from broker.api.admin import PartyIn, RoleBindingIn
from broker.api.admin import router as admin_router
from tests.support import LiveBroker, live_broker

BAD_IDS = ["Bad Id!", "x" * 101, "-starts-with-a-dash", "semi;colon", "naïve", "a"]
# A valid body for each request model an admin route takes; the id field is then replaced.
VALID_BODIES: dict[type[Any], tuple[str, dict[str, Any]]] = {
    PartyIn: ("id", {"id": "new-party", "name": "Fenwick Parish Council", "kind": "council"}),
    RoleBindingIn: ("agreement_id", {"role": "gp", "agreement_id": "ISA-X", "flow_id": "f1"}),
}
# Routes that take no identifier at all (nothing to get wrong).
NO_IDS = {("GET", "/v1/admin/parties")}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, str]]:
    tmp: Path = tmp_path_factory.mktemp("admin-ids")
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}") as broker:
        key = broker.register("admin-1", ("admin",))
        yield broker, broker.token("admin-1", key)


def _routes() -> list[tuple[str, APIRoute]]:
    found = []
    for route in admin_router.routes:
        assert isinstance(route, APIRoute)
        found.extend((method, route) for method in sorted(route.methods))
    return found


def _requests(method: str, route: APIRoute, bad: str) -> list[tuple[str, dict[str, Any]]]:
    """``(where, request arguments)`` for each place this route takes an id, holding ``bad``."""
    path_ids = [p.name for p in route.dependant.path_params]
    good_path = route.path_format.format(**{name: "valid-id" for name in path_ids})
    body: dict[str, Any] | None = None
    body_id = None
    for param in route.dependant.body_params:
        body_id, valid = VALID_BODIES[param.field_info.annotation]  # type: ignore[index]
        body = dict(valid)
    requests = []
    for name in path_ids:
        path = route.path_format.format(
            **{n: quote(bad if n == name else "valid-id", safe="") for n in path_ids}
        )
        requests.append((f"path {name}", {"url": path, "json": body}))
    for param in route.dependant.query_params:
        if param.name.endswith("_id"):
            requests.append(
                (
                    f"query {param.name}",
                    {"url": good_path, "params": {param.name: bad}, "json": body},
                )
            )
    if body is not None and body_id is not None:
        requests.append((f"body {body_id}", {"url": good_path, "json": {**body, body_id: bad}}))
    return requests


def test_every_admin_route_is_covered() -> None:
    for method, route in _routes():
        if (method, route.path) in NO_IDS:
            assert _requests(method, route, "Bad Id!") == []
        else:
            assert _requests(method, route, "Bad Id!"), f"{method} {route.path} takes no id?"


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "route"), _routes(), ids=[f"{m} {r.path}" for m, r in _routes()]
)
def test_a_bad_id_is_422(
    admin: tuple[LiveBroker, str], method: str, route: APIRoute, bad: str
) -> None:
    broker, token = admin
    for where, request in _requests(method, route, bad):
        response = broker.http.request(
            method, headers={"Authorization": f"Bearer {token}"}, **request
        )
        assert response.status_code == 422, (where, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 422
        field = where.split(" ", 1)[1]
        assert field in {e["location"] for e in problem["errors"]}, problem


def test_a_good_id_still_works(admin: tuple[LiveBroker, str]) -> None:
    broker, token = admin
    auth = {"Authorization": f"Bearer {token}"}
    listed = broker.http.get("/v1/admin/clients", params={"party_id": "test-party"}, headers=auth)
    assert [c["id"] for c in listed.json()] == ["admin-1"]
    missing = broker.http.post("/v1/admin/clients/no-such-client/suspend", headers=auth)
    assert missing.status_code == 404
