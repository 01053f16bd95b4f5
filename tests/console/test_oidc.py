"""OIDC sign-in against a small identity provider served on loopback (code flow with PKCE):
accounts matched on issuer and subject only, the sign-in bound to the browser that started it,
``azp``, ``iat`` and nonce checked, locked and suspended accounts refused, each refusal logged."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from broker.audit.tables import audit_entries
from broker.console.accounts import Accounts, Role
from broker.console.enrolment import Enrolment
from broker.console.tables import console_users
from tests.console.helpers import REPO, csrf_of, sign_in
from tests.support import LiveBroker, free_port, live_broker, serve_app

CLIENT_ID = "broker-console"
CLIENT_SECRET = "idp-client-secret-for-tests-only"
CALDICOTT_SUB = "idp-user-1"


class FakeIdP:
    """Discovery, authorize (signs in ``user`` at once), token (checks PKCE), JWKS."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, private=True, parameters={"kid": "idp-1"})
        self.user = "r9z-caldicott"
        self.sub = CALDICOTT_SUB
        self.extra: dict[str, Any] = {}
        """Claims to add, replace or (with None) remove in the next ID tokens."""
        self.codes: dict[str, dict[str, str]] = {}
        self.tamper_nonce = False
        self.app = FastAPI()
        self.app.add_api_route("/.well-known/openid-configuration", self.discovery)
        self.app.add_api_route("/authorize", self.authorize)
        self.app.add_api_route("/token", self.token, methods=["POST"])
        self.app.add_api_route("/jwks", self.jwks)

    def discovery(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "redirect_uri": q["redirect_uri"],
        }
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(target, status_code=302)

    def token(
        self,
        request: Request,
        code: Annotated[str, Form()],
        code_verifier: Annotated[str, Form()],
        redirect_uri: Annotated[str, Form()],
    ) -> Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = self.codes.pop(code, None)
        digest = hashlib.sha256(code_verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if (
            request.headers.get("authorization") != expected
            or grant is None
            or grant["challenge"] != challenge
            or grant["redirect_uri"] != redirect_uri
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.sub,
            "preferred_username": self.user,
            "nonce": "wrong" if self.tamper_nonce else grant["nonce"],
            "iat": now,
            "exp": now + 300,
        }
        claims.update(self.extra)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, self.key)
        return JSONResponse({"access_token": "x", "token_type": "Bearer", "id_token": id_token})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, FakeIdP]]:
    tmp = tmp_path_factory.mktemp("oidc")
    port = free_port()
    idp = FakeIdP(f"http://127.0.0.1:{port}")
    secret = tmp / "oidc-secret"
    secret.write_text(CLIENT_SECRET)
    root = tmp / "agreements"
    shutil.copytree(REPO / "agreements" / "examples", root)
    with (
        serve_app(idp.app, port),
        live_broker(
            tmp,
            f"sqlite:///{tmp / 'b.db'}",
            demo=True,
            agreements_dir=root,
            console_oidc_issuer=idp.issuer,
            console_oidc_client_id=CLIENT_ID,
            console_oidc_client_secret_file=secret,
        ) as broker,
    ):
        enrolment = Enrolment(broker.services.engine)
        enrolment.link("r9z-caldicott", "R9Z", idp.issuer, CALDICOTT_SUB, "cli:test")
        yield broker, idp


@pytest.fixture
def idp(setup: tuple[LiveBroker, FakeIdP]) -> Iterator[FakeIdP]:
    """The provider signing in the linked Caldicott Guardian; reset after each test."""
    provider = setup[1]
    yield provider
    provider.user, provider.sub, provider.extra = "r9z-caldicott", CALDICOTT_SUB, {}
    provider.tamper_nonce = False


def _refusals(broker: LiveBroker) -> list[dict[str, Any]]:
    c = audit_entries.c
    with broker.services.engine.connect() as conn:
        rows = conn.execute(select(c.leaf).where(c.kind == "admin")).all()
    found = [json.loads(bytes(r[0]))["entry"] for r in rows]
    return [
        e["details"]
        for e in found
        if e.get("details", {}).get("action") == "console-sign-in-refused"
    ]


def _sign_in(broker: LiveBroker) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=broker.url, follow_redirects=True, timeout=10.0)
    assert "Sign in with your organisation" in client.get("/console/login").text
    return client, client.get("/console/login/oidc", params={"next": "/console/agreements"})


def test_a_linked_officer_signs_in_through_the_identity_provider(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP
) -> None:
    broker, _ = setup
    client, page = _sign_in(broker)
    try:
        assert page.status_code == 200
        assert page.url.path == "/console/agreements"
        assert "Dr Owen Hale" in page.text
    finally:
        client.close()


def test_the_state_cookie_is_short_lived_lax_and_http_only(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP
) -> None:
    broker, _ = setup
    with httpx.Client(base_url=broker.url, timeout=10.0) as client:
        cookie = client.get("/console/login/oidc").headers["set-cookie"].lower()
    assert cookie.startswith("broker_console_oidc=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/console" in cookie
    assert "max-age=600" in cookie


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user": "nobody-here", "sub": "idp-user-unknown"}, "no console account is linked"),
        ({"tamper_nonce": True}, "does not verify"),
        ({"sub": "idp-user-2"}, "no console account is linked"),
        ({"extra": {"aud": [CLIENT_ID, "other-app"], "azp": "other-app"}}, "another client"),
        ({"extra": {"aud": [CLIENT_ID, "other-app"]}}, "another client"),
        ({"extra": {"azp": "other-app"}}, "another client"),
        ({"extra": {"iat": None}}, "does not verify"),
        ({"extra": {"iat": int(time.time()) - 3600}}, "not issued just now"),
        ({"extra": {"iat": int(time.time()) + 3600}}, "does not verify"),
        ({"extra": {"iat": "yesterday"}}, "does not verify"),
    ],
    ids=[
        "no-linked-account",
        "wrong-nonce",
        "preferred-username-of-another-officer",
        "azp-of-another-client",
        "several-audiences-no-azp",
        "azp-alone-of-another-client",
        "no-iat",
        "ancient-iat",
        "future-iat",
        "iat-not-a-number",
    ],
)
def test_sign_in_is_refused_and_logged(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP, change: dict[str, Any], reason: str
) -> None:
    broker, _ = setup
    for name, value in change.items():
        setattr(idp, name, value)
    before = len(_refusals(broker))
    client, page = _sign_in(broker)
    try:
        assert page.status_code == 403
        assert client.get("/console/exchanges").url.path == "/console/login"
    finally:
        client.close()
    refusals = _refusals(broker)
    assert len(refusals) == before + 1
    assert refusals[-1]["method"] == "oidc"
    assert reason in refusals[-1]["reason"]


def test_a_sign_in_started_in_another_browser_is_refused(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP
) -> None:
    """Login forgery: a callback URL made by one client, opened in another, signs nobody in."""
    broker, _ = setup
    before = len(_refusals(broker))
    with (
        httpx.Client(base_url=broker.url, timeout=10.0) as attacker,
        httpx.Client(base_url=broker.url, timeout=10.0) as victim,
    ):
        to_idp = attacker.get("/console/login/oidc")
        back = httpx.get(to_idp.headers["location"])
        callback = back.headers["location"].replace(broker.settings.public_url, "")
        victim.get("/console/login/oidc")  # the victim's own sign-in under way does not help
        forged = victim.get(callback)
        assert forged.status_code == 403
        assert "broker_console=" not in forged.headers.get("set-cookie", "")
        assert victim.get("/console/exchanges").status_code == 303
    assert "not started in this browser" in _refusals(broker)[before]["reason"]


def test_a_state_is_used_once(setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP) -> None:
    broker, _ = setup
    with httpx.Client(base_url=broker.url, timeout=10.0) as client:
        to_idp = client.get("/console/login/oidc")
        back = httpx.get(to_idp.headers["location"])
        callback = back.headers["location"].replace(broker.settings.public_url, "")
        assert client.get(callback).status_code == 303
        assert client.get(callback).status_code == 403


@pytest.mark.parametrize("how", ["suspended", "locked"])
def test_a_suspended_or_locked_account_cannot_sign_in_by_any_route(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP, how: str
) -> None:
    broker, _ = setup
    engine = broker.services.engine
    enrolment = Enrolment(engine)
    username, subject = f"r9z-iao-{how}", f"idp-user-iao-{how}"
    Accounts(engine).add_user(username, "R9Z", Role.GOVERNANCE, "kettle-orchard-violin")
    enrolment.link(username, "R9Z", idp.issuer, subject, "cli:test")
    if how == "suspended":
        enrolment.set_active(username, "R9Z", False, "cli:test")
    else:
        with engine.begin() as conn:
            conn.execute(
                update(console_users)
                .where(console_users.c.username == username)
                .values(locked_until_ms=int(time.time() * 1000) + 600_000)
            )
    idp.user, idp.sub = username, subject
    try:
        client, page = _sign_in(broker)
        client.close()
        assert page.status_code == 403
        assert "suspended or locked" in _refusals(broker)[-1]["reason"]
        with httpx.Client(base_url=broker.url, timeout=10.0) as client:
            form = client.get("/console/login")
            by_password = client.post(
                "/console/login",
                data={
                    "username": username,
                    "password": "kettle-orchard-violin",
                    "csrf": csrf_of(form.text),
                },
            )
            assert by_password.status_code == 401
    finally:
        enrolment.set_active(username, "R9Z", True, "cli:test")
    client, page = _sign_in(broker)  # reinstated (and the lock cleared): both routes work again
    client.close()
    assert page.status_code == 200
    officer = sign_in(broker.url, username, "kettle-orchard-violin")
    try:
        assert officer.get("/console/").status_code == 200
    finally:
        officer.close()


def test_an_unlinked_account_cannot_sign_in_through_the_provider(
    setup: tuple[LiveBroker, FakeIdP], idp: FakeIdP
) -> None:
    broker, _ = setup
    enrolment = Enrolment(broker.services.engine)
    enrolment.unlink("r9z-caldicott", "R9Z", "cli:test")
    try:
        client, page = _sign_in(broker)
        client.close()
        assert page.status_code == 403
    finally:
        enrolment.link("r9z-caldicott", "R9Z", idp.issuer, CALDICOTT_SUB, "cli:test")


def test_oidc_routes_are_absent_when_not_configured(tmp_path: Path) -> None:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'b.db'}") as broker:
        assert broker.http.get("/console/login/oidc").status_code == 404
        assert "organisation's account" not in broker.http.get("/console/login").text
        Accounts(broker.services.engine)  # the console's tables exist on a plain broker
        assert Role.AUDITOR.value == "auditor"
