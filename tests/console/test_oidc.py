"""OIDC sign-in against a small identity provider served on loopback (code flow with PKCE)."""

from __future__ import annotations

import base64
import hashlib
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

from broker.console.accounts import Accounts, Role
from tests.console.helpers import REPO
from tests.support import LiveBroker, free_port, live_broker, serve_app

CLIENT_ID = "broker-console"
CLIENT_SECRET = "idp-client-secret-for-tests-only"


class FakeIdP:
    """Discovery, authorize (signs in ``user`` at once), token (checks PKCE), JWKS."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, private=True, parameters={"kid": "idp-1"})
        self.user = "r9z-caldicott"
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
            "sub": "idp-user-1",
            "preferred_username": self.user,
            "nonce": "wrong" if self.tamper_nonce else grant["nonce"],
            "iat": now,
            "exp": now + 300,
        }
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
        yield broker, idp


def _sign_in(broker: LiveBroker) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=broker.url, follow_redirects=True, timeout=10.0)
    assert "Sign in with your organisation" in client.get("/console/login").text
    return client, client.get("/console/login/oidc", params={"next": "/console/agreements"})


def test_a_known_officer_signs_in_through_the_identity_provider(
    setup: tuple[LiveBroker, FakeIdP],
) -> None:
    broker, idp = setup
    idp.user, idp.tamper_nonce = "r9z-caldicott", False
    client, page = _sign_in(broker)
    try:
        assert page.status_code == 200
        assert page.url.path == "/console/agreements"
        assert "Dr Owen Hale" in page.text
    finally:
        client.close()


@pytest.mark.parametrize(
    ("user", "tamper"),
    [("nobody-here", False), ("r9z-caldicott", True)],
    ids=["no-local-account", "wrong-nonce"],
)
def test_sign_in_is_refused(setup: tuple[LiveBroker, FakeIdP], user: str, tamper: bool) -> None:
    broker, idp = setup
    idp.user, idp.tamper_nonce = user, tamper
    client, page = _sign_in(broker)
    try:
        assert page.status_code == 403
        assert client.get("/console/exchanges").url.path == "/console/login"
    finally:
        client.close()


def test_a_state_is_used_once(setup: tuple[LiveBroker, FakeIdP]) -> None:
    broker, idp = setup
    idp.user, idp.tamper_nonce = "r9z-caldicott", False
    with httpx.Client(base_url=broker.url, timeout=10.0) as client:
        to_idp = client.get("/console/login/oidc")
        back = httpx.get(to_idp.headers["location"])
        callback = back.headers["location"].replace(broker.settings.public_url, "")
        assert client.get(callback).status_code == 303
        assert client.get(callback).status_code == 403


def test_oidc_routes_are_absent_when_not_configured(tmp_path: Path) -> None:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'b.db'}") as broker:
        assert broker.http.get("/console/login/oidc").status_code == 404
        assert "organisation's account" not in broker.http.get("/console/login").text
        Accounts(broker.services.engine)  # the console's tables exist on a plain broker
        assert Role.AUDITOR.value == "auditor"
