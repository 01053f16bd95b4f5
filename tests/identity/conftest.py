"""Fixtures: a database with the demo hospital, and its identity provider's JWKS served for real
on loopback (aiohttp), with counters and faults; helpers to mint ID tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy import Engine

from broker.auth.registry import Registry
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.identity.jwks import HttpJwksFetcher, JwksCache
from broker.identity.service import IdentityProviders
from broker.identity.store import IdentityProviderStore
from demo.parties import COUNCIL, HOSPITAL
from demo.sources.runtime import ServerThread
from tests.support import LOOPBACK_GUARD

ISSUER = "https://login.r9z.nhs.example"
CLIENT = "r9z-ed-safeguarding"
NOW = 1_795_900_000.0

Key = ECKey | RSAKey | OKPKey


def public(key: Key, kid: str) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    data["kid"] = kid
    return data


def mint(key: Key, kid: str | None = "k1", alg: str = "ES256", **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "hospital-ed-nurse-17",
        "role": "safeguarding-nurse",
        "iat": int(NOW) - 60,
        "exp": int(NOW) + 300,
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    header: dict[str, Any] = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = json.dumps({"alg": alg, "kid": "k1"}).encode()
    return f"{_b64(header)}.{_b64(json.dumps(claims).encode())}."


def hmac_forgery(key: Key, claims: dict[str, Any]) -> str:
    """The classic forgery: HS256 "signed" with the provider's public key as the secret."""
    head = unsigned(claims, "HS256").rstrip(".")
    mac = hmac.new(key.as_pem(private=False), head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(mac)}"


@dataclass
class JwksServer:
    """The provider's key endpoint: serves ``jwks``, counts fetches, can fail or stall."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    fetches: int = 0
    status: int = 200
    delay_seconds: float = 0.0
    url: str = ""

    def app(self) -> web.Application:
        async def handler(_request: web.Request) -> web.Response:
            self.fetches += 1
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            if self.status != 200:
                return web.Response(status=self.status)
            return web.json_response(self.jwks)

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", handler)
        return app


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """SQLite, and PostgreSQL too when BROKER_TEST_DATABASE_URL is set (root conftest)."""
    eng = build_engine(database_url, pool_size=4)
    upgrade(eng)
    registry = Registry(eng)
    registry.add_party(HOSPITAL, "Calderbridge Hospitals", "nhs", "R9Z", actor="test")
    registry.add_party(COUNCIL, "Calderbridge City Council", "council", None, actor="test")
    yield eng
    eng.dispose()


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


@pytest.fixture
def jwks_server(key: ECKey) -> Iterator[JwksServer]:
    server = JwksServer({"keys": [public(key, "k1")]})
    threads = ServerThread()
    server.url = threads.serve(server.app()) + "/.well-known/jwks.json"
    yield server
    threads.stop()


class MonoClock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mono() -> MonoClock:
    return MonoClock()


@pytest.fixture
def fetcher() -> Iterator[HttpJwksFetcher]:
    f = HttpJwksFetcher(timeout_seconds=0.5, guard=LOOPBACK_GUARD)
    yield f
    f.close()


@pytest.fixture
def idp(engine: Engine, fetcher: HttpJwksFetcher, mono: MonoClock) -> IdentityProviders:
    cache = JwksCache(fetcher, ttl_seconds=300, min_refresh_seconds=30, clock=mono)
    return IdentityProviders(
        IdentityProviderStore(engine, refresh_seconds=0, guard=LOOPBACK_GUARD), cache
    )
