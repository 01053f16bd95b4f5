"""OpenID Connect sign-in for the console (authorization code flow with PKCE).

For councils with an identity provider: the provider proves who the officer is; the local
account linked to the ID token's issuer and subject (``broker console link-oidc``) still decides
the role and party, so an identity with no linked account is refused. No other claim (a
``preferred_username`` least of all) picks the account.

The ``state`` (stored server-side only as a hash, used once, ten minutes at most) is also set in
a short-lived cookie on the browser that started the sign-in; a callback whose ``state`` is not
that browser's is refused (login forgery), and with it the ``nonce`` and the PKCE S256 verifier
kept beside the state. The ID token's signature is checked against the provider's published
keys, with its issuer, audience (``azp`` must be the console when ``aud`` names several clients),
expiry, issue time (required, at most ``ID_TOKEN_MAX_AGE_SECONDS`` old) and nonce.

PKCE and random values come from authlib; the ID token is checked with joserfc (the JOSE
library the broker already uses). Network calls go through an injected ``httpx.Client`` factory.
"""

from __future__ import annotations

import hashlib
import hmac
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
#: The state cookie (the browser that started a sign-in): lives as long as a state.
STATE_COOKIE = "broker_console_oidc"
#: An ID token issued longer ago than this (plus the clock skew) is refused.
ID_TOKEN_MAX_AGE_SECONDS = 600
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
    leeway_seconds: int = 30

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
            leeway_seconds=settings.clock_skew_seconds,
        )


@dataclass(frozen=True)
class OidcIdentity:
    """Who the identity provider signed in: the account is found by ``issuer`` and ``subject``;
    ``name`` (the configured username claim, if any) is only shown in logs."""

    issuer: str
    subject: str
    name: str
    next_path: str


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

    def begin(self, next_path: str) -> tuple[str, str]:
        """Start a sign-in: ``(provider URL to send the browser to, state)``; the caller binds
        the state to the browser (``STATE_COOKIE``). Raises OidcError."""
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
        url = str(
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
        return url, state

    def finish(self, code: str, state: str, browser_state: str | None) -> OidcIdentity:
        """Complete a sign-in. The state is used up whatever happens.

        Raises OidcError for a state this browser did not start (``browser_state``, its cookie),
        an unknown or expired state, a refused code, or an ID token that does not verify.
        """
        now = int(self._clock() * 1000)
        c = console_oidc_logins.c
        with self._engine.begin() as conn:
            row = conn.execute(
                delete(console_oidc_logins)
                .where(c.state_hash == _hash(state))
                .returning(c.nonce, c.code_verifier, c.next_path, c.created_ms)
            ).first()
        if not browser_state or not hmac.compare_digest(browser_state.encode(), state.encode()):
            raise OidcError("this sign-in was not started in this browser: start again")
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
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise OidcError("the ID token names no usable subject")
        name = claims.get(self.config.username_claim)
        shown = name[:100] if isinstance(name, str) else ""
        return OidcIdentity(self.config.issuer, subject, shown, str(row.next_path))

    def _verify(self, id_token: str, keys: KeySet, nonce: str) -> dict[str, Any]:
        try:
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=self.config.leeway_seconds,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError) as e:
            raise OidcError("the ID token does not verify") from e
        claims = dict(token.claims)
        self._check_party_and_age(claims)
        return claims

    def _check_party_and_age(self, claims: dict[str, Any]) -> None:
        """``azp`` names the console when present or when ``aud`` has several values; ``iat``
        is a number, not in the future and not older than ``ID_TOKEN_MAX_AGE_SECONDS``
        (each with the clock skew). Raises OidcError."""
        aud, azp = claims.get("aud"), claims.get("azp")
        several = isinstance(aud, list) and len(aud) > 1
        if (several or azp is not None) and azp != self.config.client_id:
            raise OidcError("the ID token was issued to another client")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise OidcError("the ID token has no usable issue time")
        now, skew = self._clock(), self.config.leeway_seconds
        if iat > now + skew or now - iat > ID_TOKEN_MAX_AGE_SECONDS + skew:
            raise OidcError("the ID token was not issued just now")
