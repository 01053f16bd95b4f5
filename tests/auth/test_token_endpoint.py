"""POST /oauth2/token over real HTTP: every way a client assertion can be wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import PrivateKey, make_client_assertion
from tests.support import LiveBroker, live_broker, new_key, public_jwk


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LiveBroker]:
    """SQLite: these checks do not depend on the database."""
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}") as live:
        yield live


@pytest.fixture
def broker_any_db(tmp_path: Path, database_url: str) -> Iterator[LiveBroker]:
    """SQLite, and PostgreSQL when configured: for checks that live in the database."""
    with live_broker(tmp_path, database_url) as live:
        yield live


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def claims_for(broker: LiveBroker, client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": broker.token_url,
        "jti": secrets.token_hex(8),
        "iat": now,
        "exp": now + 60,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(
    key: PrivateKey, claims: dict[str, Any], kid: str | None = "thumb", alg: str = "ES256"
) -> str:
    from joserfc import jwt

    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = key.thumbprint() if kid == "thumb" else kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }


def test_a_valid_assertion_gets_a_short_lived_token(broker_any_db: LiveBroker) -> None:
    key = broker_any_db.register("ed-system", ("exchange",))
    response = broker_any_db.http.post(
        "/oauth2/token", data=broker_any_db.token_form("ed-system", key)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "exchange"
    assert response.headers["cache-control"] == "no-store"
    me = broker_any_db.get("/v1/whoami", body["access_token"]).json()
    assert me == {
        "client_id": "ed-system",
        "client_name": "ed-system",
        "party_id": "test-party",
        "scopes": ["exchange"],
    }


@pytest.mark.parametrize("kind", ["RSA", "EC", "OKP"], ids=["RS512", "ES256", "EdDSA"])
def test_each_key_type_is_accepted(broker: LiveBroker, kind: str) -> None:
    key = broker.register(f"client-{kind.lower()}", key=new_key(kind))
    assert broker.token(f"client-{kind.lower()}", key)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "PS256"])
def test_other_rsa_algorithms_are_accepted(broker: LiveBroker, alg: str) -> None:
    key = broker.register("rsa-client", key=new_key("RSA"))
    assert broker.token("rsa-client", key, alg=alg)


Case = Callable[[LiveBroker, PrivateKey], dict[str, str] | tuple[str, dict[str, str]]]

BAD_FORMS: dict[str, tuple[Case, str, str]] = {
    # name: (build the form, expected error, expected metrics reason)
    "missing grant_type": (
        lambda b, k: {k2: v for k2, v in b.token_form("c1", k).items() if k2 != "grant_type"},
        "invalid_request",
        "malformed",
    ),
    "password grant": (
        lambda b, k: {**b.token_form("c1", k), "grant_type": "password"},
        "unsupported_grant_type",
        "unsupported_grant_type",
    ),
    "wrong assertion type": (
        lambda b, k: {**b.token_form("c1", k), "client_assertion_type": "saml"},
        "invalid_request",
        "malformed",
    ),
    "no assertion": (
        lambda b, k: {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE},
        "invalid_request",
        "malformed",
    ),
    "assertion not a JWT": (lambda b, k: form("not-a-jwt"), "invalid_request", "malformed"),
    "client secret as well": (
        lambda b, k: {**b.token_form("c1", k), "client_secret": "s3cret"},
        "invalid_request",
        "several_auth_methods",
    ),
    "client secret instead": (
        lambda b, k: {
            "grant_type": "client_credentials",
            "client_id": "c1",
            "client_secret": "s3cret",
        },
        "invalid_client",
        "unsupported_auth_method",
    ),
    "assertion over 8 KiB": (
        lambda b, k: form(signed(k, claims_for(b, "c1", padding="x" * 9000))),
        "invalid_request",
        "too_large",
    ),
    "unknown client": (
        lambda b, k: form(signed(k, claims_for(b, "nobody"))),
        "invalid_client",
        "unknown_client",
    ),
    "signed with another key": (
        lambda b, k: form(signed(new_key(), claims_for(b, "c1"), kid=k.thumbprint())),
        "invalid_client",
        "bad_signature",
    ),
    "unknown kid": (
        lambda b, k: form(signed(k, claims_for(b, "c1"), kid="not-registered")),
        "invalid_client",
        "unknown_kid",
    ),
    "expired": (
        lambda b, k: form(
            signed(k, claims_for(b, "c1", iat=int(time.time()) - 600, exp=int(time.time()) - 300))
        ),
        "invalid_client",
        "expired",
    ),
    "not yet valid": (
        lambda b, k: form(signed(k, claims_for(b, "c1", nbf=int(time.time()) + 120))),
        "invalid_client",
        "not_yet_valid",
    ),
    "issued in the future": (
        lambda b, k: form(signed(k, claims_for(b, "c1", iat=int(time.time()) + 120))),
        "invalid_client",
        "not_yet_valid",
    ),
    "lives longer than 5 minutes": (
        lambda b, k: form(signed(k, claims_for(b, "c1", exp=int(time.time()) + 3600))),
        "invalid_client",
        "too_long_lived",
    ),
    "no exp": (
        lambda b, k: form(signed(k, claims_for(b, "c1", exp=None))),
        "invalid_client",
        "no_exp",
    ),
    "no jti": (
        lambda b, k: form(signed(k, claims_for(b, "c1", jti=None))),
        "invalid_client",
        "no_jti",
    ),
    "wrong aud": (
        lambda b, k: form(
            signed(k, claims_for(b, "c1", aud="https://elsewhere.example/oauth2/token"))
        ),
        "invalid_client",
        "bad_audience",
    ),
    "sub differs from iss": (
        lambda b, k: form(signed(k, claims_for(b, "c1", sub="c2"))),
        "invalid_client",
        "bad_issuer",
    ),
    "alg none": (
        lambda b, k: form(unsigned_jwt({"alg": "none", "typ": "JWT"}, claims_for(b, "c1"))),
        "invalid_client",
        "bad_alg",
    ),
    "HS256 with the public key as secret": (
        lambda b, k: form(hs256_with_public_key(b, k)),
        "invalid_client",
        "bad_alg",
    ),
}


def hs256_with_public_key(broker: LiveBroker, key: PrivateKey) -> str:
    """The classic key-confusion forgery: HMAC keyed with the client's public key."""
    secret = json.dumps(public_jwk(key), sort_keys=True).encode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.thumbprint()}).encode())
    payload = b64(json.dumps(claims_for(broker, "c1")).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


@pytest.mark.parametrize(("build", "error", "reason"), BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_bad_assertions_get_the_rfc6749_error_and_no_token(
    broker: LiveBroker, build: Case, error: str, reason: str
) -> None:
    key = broker.register("c1")
    response = broker.http.post("/oauth2/token", data=build(broker, key))
    assert response.status_code == (401 if error == "invalid_client" else 400)
    body = response.json()
    assert body["error"] == error
    assert "access_token" not in body
    assert body["error_description"]
    metrics = broker.http.get("/metrics").text
    assert f'broker_token_requests_total{{outcome="refused",reason="{reason}"}} 1.0' in metrics


def test_a_body_that_is_not_a_form_is_invalid_request(broker: LiveBroker) -> None:
    response = broker.http.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_repeated_parameter_is_invalid_request(broker: LiveBroker) -> None:
    key = broker.register("c1")
    body = "&".join(f"{k}={v}" for k, v in broker.token_form("c1", key).items())
    response = broker.http.post(
        "/oauth2/token",
        content=body + "&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["error"] == "invalid_request"


def test_garbage_bytes_in_the_form_are_invalid_request(broker: LiveBroker) -> None:
    response = broker.http.post(
        "/oauth2/token",
        content=b"\xff\xfe\x00grant",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_replayed_jti_is_refused(broker_any_db: LiveBroker) -> None:
    key = broker_any_db.register("c1")
    data = broker_any_db.token_form("c1", key)
    assert broker_any_db.http.post("/oauth2/token", data=data).status_code == 200
    again = broker_any_db.http.post("/oauth2/token", data=data)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert "used already" in again.json()["error_description"]


def test_a_suspended_client_gets_no_token(broker_any_db: LiveBroker) -> None:
    key = broker_any_db.register("c1")
    broker_any_db.services.registry.set_status("c1", "suspended", actor="test")
    response = broker_any_db.http.post("/oauth2/token", data=broker_any_db.token_form("c1", key))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_no_kid_is_accepted_only_when_the_client_has_one_key(broker: LiveBroker) -> None:
    key = broker.register("c1")
    ok = broker.http.post(
        "/oauth2/token", data=form(signed(key, claims_for(broker, "c1"), kid=None))
    )
    assert ok.status_code == 200
    broker.services.registry.add_key("c1", public_jwk(new_key()), actor="test")
    refused = broker.http.post(
        "/oauth2/token", data=form(signed(key, claims_for(broker, "c1"), kid=None))
    )
    assert refused.status_code == 401
    assert "no kid" in refused.json()["error_description"]


def test_the_audience_never_comes_from_the_host_header(broker: LiveBroker) -> None:
    key = broker.register("c1")
    spoofed = "http://attacker.example/oauth2/token"
    response = broker.http.post(
        "/oauth2/token",
        data=form(signed(key, claims_for(broker, "c1", aud=spoofed))),
        headers={"Host": "attacker.example"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_subset_of_scopes_can_be_asked_for_but_not_more(broker: LiveBroker) -> None:
    key = broker.register("c1", ("exchange", "governance"))
    narrow = broker.http.post(
        "/oauth2/token", data={**broker.token_form("c1", key), "scope": "governance"}
    )
    assert narrow.json()["scope"] == "governance"
    wider = broker.http.post(
        "/oauth2/token", data={**broker.token_form("c1", key), "scope": "admin"}
    )
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"


def test_an_assertion_signed_with_a_demo_key_is_refused_outside_the_demo(
    broker: LiveBroker,
) -> None:
    from sqlalchemy import insert

    from broker.db.tables import clients
    from demo.keys import demo_client_key

    demo_key = demo_client_key("r9z-ed-safeguarding")
    broker.register("c1")
    # As if copied from a demo database: bypass the registry's own refusal.
    with broker.services.engine.begin() as conn:
        conn.execute(
            insert(clients).values(
                id="copied-demo",
                party_id="test-party",
                name="copied",
                jwks={"keys": [public_jwk(demo_key)]},
                scopes=["exchange"],
                status="active",
                created_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
                updated_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
            )
        )
    assertion = make_client_assertion("copied-demo", demo_key, broker.token_url)
    response = broker.http.post("/oauth2/token", data=form(assertion))
    assert response.status_code == 401
    assert "demo keys" in response.json()["error_description"]


def test_tokens_and_assertions_never_reach_the_logs(
    broker: LiveBroker, capfd: pytest.CaptureFixture[str]
) -> None:
    from broker.observability import configure_logging

    configure_logging("INFO", json_lines=True)
    key = broker.register("c1")
    data = broker.token_form("c1", key)
    token = broker.http.post("/oauth2/token", data=data).json()["access_token"]
    broker.get("/v1/whoami", token)
    broker.get("/v1/whoami", token + "x")
    out, err = capfd.readouterr()
    logs = out + err
    assert '"route": "/oauth2/token"' in logs
    assert data["client_assertion"] not in logs
    assert token not in logs
    assert token.split(".")[2] not in logs
    configure_logging("WARNING", json_lines=True)
