"""OpenID Connect sign-in for the console (authorization code flow with PKCE).

For councils with an identity provider: the provider proves who the officer is; the local
account (matched by one ID token claim, ``preferred_username`` by default) still decides the
role and party, so an identity with no console account is refused. The ``state`` (stored
server-side only as a hash, used once, ten minutes at most), the ``nonce`` and the PKCE S256
verifier bind the answer to the browser that started it. The ID token's signature is checked
against the provider's published keys, with its issuer, audience, expiry and nonce.

PKCE and random values come from authlib; the ID token is checked with joserfc (the JOSE
library the broker already uses). Network calls go through an injected ``httpx.Client`` factory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Engine, delete, insert

from broker.console.errors import ConsoleError
from broker.console.tables import console_oidc_logins
from broker.core.errors import ConfigurationError, Forbidden
from broker.settings import Settings

ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256"]
STATE_TTL_MS = 600_000
METADATA_TTL_SECONDS = 3600.0


class OidcError(ConsoleError, Forbidden):
    """The identity provider did not sign the officer in, or names no active account (403)."""

    title = "Sign-in with your organisation's account failed"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    username_claim: str = "preferred_username"
    scope: str = "openid profile email"

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """None when OIDC is not configured. Raises ConfigurationError when half-configured."""
        if not settings.console_oidc_issuer:
            return None
        path: Path | None = settings.console_oidc_client_secret_file
        if not settings.console_oidc_client_id or path is None:
            raise ConfigurationError(
                "console OIDC needs BROKER_CONSOLE_OIDC_CLIENT_ID and"
                " BROKER_CONSOLE_OIDC_CLIENT_SECRET_FILE"
            )
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigurationError(f"cannot read the console OIDC client secret {path}") from e
        return cls(
            issuer=settings.console_oidc_issuer.rstrip("/"),
            client_id=settings.console_oidc_client_id,
            client_secret=secret,
            redirect_uri=f"{settings.public_url}/console/login/oidc/callback",
            username_claim=settings.console_oidc_username_claim,
        )


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OidcSignIn:
    def __init__(
        self,
        config: OidcConfig,
        engine: Engine,
        http: Callable[[], httpx.Client] = httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._engine = engine
        self._http = http
        """Makes a client per sign-in step (sign-ins are rare; nothing left open)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any], KeySet] | None = None

    def _provider(self) -> tuple[dict[str, Any], KeySet]:
        """Discovery document and signing keys, cached for an hour. Raises OidcError."""
        with self._lock:
            cached = self._metadata
            if cached is not None and self._clock() - cached[0] < METADATA_TTL_SECONDS:
                return cached[1], cached[2]
            try:
                meta = self._get(f"{self.config.issuer}/.well-known/openid-configuration")
                if meta.get("issuer", "").rstrip("/") != self.config.issuer:
                    raise OidcError("the identity provider names another issuer")
                keys = KeySet.import_key_set(self._get(str(meta["jwks_uri"])))  # type: ignore[arg-type]
            except (KeyError, ValueError, JoseError) as e:
                raise OidcError("the identity provider's configuration is not usable") from e
            self._metadata = (self._clock(), meta, keys)
            return meta, keys

    def _get(self, url: str) -> dict[str, Any]:
        try:
            with self._http() as http:
                response = http.get(url, timeout=5.0)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError("the identity provider could not be reached") from e
        if not isinstance(data, dict):
            raise OidcError("the identity provider answered with something unexpected")
        return data

    def begin(self, next_path: str) -> str:
        """Start a sign-in: the provider URL to send the browser to. Raises OidcError."""
        meta, _ = self._provider()
        state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
        now = int(self._clock() * 1000)
        with self._engine.begin() as conn:
            conn.execute(
                delete(console_oidc_logins).where(
                    console_oidc_logins.c.created_ms < now - STATE_TTL_MS
                )
            )
            conn.execute(
                insert(console_oidc_logins).values(
                    state_hash=_hash(state),
                    nonce=nonce,
                    code_verifier=verifier,
                    next_path=next_path,
                    created_ms=now,
                )
            )
        return str(
            add_params_to_uri(
                str(meta["authorization_endpoint"]),
                [
                    ("response_type", "code"),
                    ("client_id", self.config.client_id),
                    ("redirect_uri", self.config.redirect_uri),
                    ("scope", self.config.scope),
                    ("state", state),
                    ("nonce", nonce),
                    ("code_challenge", create_s256_code_challenge(verifier)),
                    ("code_challenge_method", "S256"),
                ],
            )
        )

    def finish(self, code: str, state: str) -> tuple[str, str]:
        """Complete a sign-in: ``(username, next path)``. The state is used up whatever happens.

        Raises OidcError for an unknown or expired state, a refused code, or an ID token that
        does not verify.
        """
        now = int(self._clock() * 1000)
        c = console_oidc_logins.c
        with self._engine.begin() as conn:
            row = conn.execute(
                delete(console_oidc_logins)
                .where(c.state_hash == _hash(state))
                .returning(c.nonce, c.code_verifier, c.next_path, c.created_ms)
            ).first()
        if row is None or now - row.created_ms > STATE_TTL_MS:
            raise OidcError("this sign-in was not started here or took too long: start again")
        meta, keys = self._provider()
        try:
            with self._http() as http:
                response = http.post(
                    str(meta["token_endpoint"]),
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": self.config.redirect_uri,
                        "code_verifier": row.code_verifier,
                    },
                    auth=(self.config.client_id, self.config.client_secret),
                    timeout=5.0,
                )
            response.raise_for_status()
            id_token = str(response.json()["id_token"])
        except (httpx.HTTPError, ValueError, KeyError) as e:
            raise OidcError("the identity provider refused the sign-in") from e
        claims = self._verify(id_token, keys, row.nonce)
        username = claims.get(self.config.username_claim)
        if not isinstance(username, str) or not username:
            raise OidcError(f"the ID token has no {self.config.username_claim} claim")
        return username.strip().lower(), str(row.next_path)

    def _verify(self, id_token: str, keys: KeySet, nonce: str) -> dict[str, Any]:
        try:
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as e:
            raise OidcError("the ID token does not verify") from e
        return dict(token.claims)
