"""Operator endpoints, error mapping and limits, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from broker.container import Services
from tests.support import LiveBroker, live_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LiveBroker]:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}") as live:
        yield live


def test_healthz(broker: LiveBroker) -> None:
    assert broker.http.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database_and_migrations(broker: LiveBroker) -> None:
    ready = broker.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    with broker.services.engine.begin() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        # Behind the newest migration (an upgrade not run): not ready.
        not_ready = broker.http.get("/readyz")
        assert not_ready.status_code == 503
        assert "migration" in not_ready.json()["checks"]["database"]
        # Past it, by a revision this version does not know (a newer version migrated it during
        # a rolling upgrade): this instance keeps serving (deploy/README.md, "Upgrades").
        with broker.services.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        assert broker.http.get("/readyz").status_code == 200
    finally:
        with broker.services.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_metrics_count_requests_by_route_template_and_status(broker: LiveBroker) -> None:
    broker.get("/v1/whoami")
    broker.http.get("/v1/admin/clients/someone-s-nhs-9990000018/suspend")
    text = broker.http.get("/metrics").text
    assert 'broker_http_requests_total{method="GET",route="/v1/whoami",status="401"} 1.0' in text
    assert "broker_http_request_duration_seconds_bucket" in text
    assert "9990000018" not in text  # raw paths never become labels


def test_docs_and_openapi_describe_the_security_scheme(broker: LiveBroker) -> None:
    assert broker.http.get("/docs").status_code == 200
    spec = broker.http.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["BearerToken"]
    assert scheme["scheme"] == "bearer"
    assert "private_key_jwt" in scheme["description"]
    assert "/oauth2/token" in spec["paths"]


def test_unknown_routes_are_problems(broker: LiveBroker) -> None:
    response = broker.http.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_422_names_every_bad_field(broker: LiveBroker) -> None:
    key = broker.register("admin-1", ("admin",))
    token = broker.token("admin-1", key)
    response = broker.http.post(
        "/v1/admin/parties",
        json={"id": "x", "kind": "bank", "colour": "red"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    locations = {e["location"] for e in response.json()["errors"]}
    assert locations == {"id", "name", "kind", "colour"}


def test_domain_validation_errors_are_422_with_fields(broker: LiveBroker) -> None:
    key = broker.register("admin-1", ("admin",))
    token = broker.token("admin-1", key)
    response = broker.http.post(
        "/v1/admin/parties",
        json={"id": "R1A", "name": "A Trust", "kind": "nhs"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"location": "ods_code", "message": "NHS bodies need their ODS code"}
    ]


def test_a_duplicate_is_409(broker: LiveBroker) -> None:
    key = broker.register("admin-1", ("admin",))
    token = broker.token("admin-1", key)
    body = {"id": "test-party", "name": "Again", "kind": "other"}
    response = broker.http.post(
        "/v1/admin/parties", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 409


def test_an_oversized_body_is_413_before_it_is_read(broker: LiveBroker) -> None:
    response = broker.http.post("/oauth2/token", content=b"x" * 70000)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unexpected_error_is_a_bare_500_without_a_trace(tmp_path: Path) -> None:
    def break_registry(services: Services) -> None:
        def boom(client_id: str) -> None:
            raise RuntimeError("secret internal detail at /srv/broker/registry.py line 42")

        services.registry.find_client = boom  # type: ignore[method-assign,assignment]

    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", break_registry) as live:
        response = live.http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJjMSJ9.c2ln",
            },
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"]


def test_the_request_id_is_echoed_or_made(broker: LiveBroker) -> None:
    given = broker.http.get("/healthz", headers={"X-Request-ID": "partner-req-00001"})
    assert given.headers["x-request-id"] == "partner-req-00001"
    made = broker.http.get("/healthz", headers={"X-Request-ID": "bad id; drop table"})
    assert made.headers["x-request-id"] != "bad id; drop table"
