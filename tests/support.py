"""Test helpers: a broker on loopback, settings, keys and registered clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from joserfc.jwk import ECKey, OKPKey, RSAKey

from adapters.bindings import BindingSet
from broker.app import create_app
from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import PrivateKey, make_client_assertion
from broker.container import Services, build_services
from broker.outbound import OutboundGuard
from broker.secrets_check import init_secrets
from broker.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOOPBACK_ALLOW = ("127.0.0.0/8", "::1", "localhost")
"""The outbound allow-list of tests: their servers (webhook receivers, key sets, OPA doubles)
listen on loopback."""

LOOPBACK_GUARD = OutboundGuard.from_entries(LOOPBACK_ALLOW)
"""The outbound guard for services built directly in tests."""


def make_settings(
    tmp_path: Path, database_url: str, port: int | None = None, **extra: Any
) -> Settings:
    port = port or free_port()
    extra.setdefault("outbound_allow", list(LOOPBACK_ALLOW))
    # Instances behind one load balancer share one public URL (the log's origin): pass it.
    extra.setdefault("public_url", f"http://127.0.0.1:{port}")
    config = Settings(
        database_url=database_url,
        keys_dir=tmp_path / "keys",
        pseudonym_key_file=tmp_path / "keys" / "pseudonym.key",
        demo_dir=tmp_path / "demo",
        log_json=True,
        **extra,
    )
    init_secrets(config)
    return config


class Clock:
    """A settable clock for services under test (seconds since the epoch)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class LiveBroker:
    settings: Settings
    services: Services
    url: str
    clock: Clock
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def token_url(self) -> str:
        return f"{self.settings.public_url}/oauth2/token"

    def token_form(self, client_id: str, key: PrivateKey, **kwargs: Any) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": make_client_assertion(
                client_id, key, self.token_url, **{"now": self.clock(), **kwargs}
            ),
        }

    def token(self, client_id: str, key: PrivateKey, **kwargs: Any) -> str:
        response = self.http.post("/oauth2/token", data=self.token_form(client_id, key, **kwargs))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def get(
        self,
        path: str,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        merged = {"Authorization": f"Bearer {token}"} if token else {}
        merged.update(headers or {})
        return self.http.get(path, headers=merged, **kwargs)

    def register(
        self,
        client_id: str,
        scopes: tuple[str, ...] = ("exchange",),
        party: str = "test-party",
        key: PrivateKey | None = None,
    ) -> PrivateKey:
        """Register a client (and its party if new) with a fresh key; return the private key."""
        key = key or ECKey.generate_key("P-256", private=True)
        if party not in {p.id for p in self.services.registry.list_parties()}:
            self.services.registry.add_party(party, f"Party {party}", "other", None, actor="test")
        self.services.registry.add_client(
            client_id, party, client_id, {"keys": [public_jwk(key)]}, list(scopes), actor="test"
        )
        return key


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    jwk = dict(key.as_dict(private=False))
    jwk["kid"] = key.thumbprint()
    return jwk


def new_key(kind: str = "EC") -> PrivateKey:
    if kind == "RSA":
        return RSAKey.generate_key(2048, private=True)
    if kind == "OKP":
        return OKPKey.generate_key("Ed25519", private=True)
    return ECKey.generate_key("P-256", private=True)


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:port in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test broker did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def live_broker(
    tmp_path: Path,
    database_url: str,
    customise: Callable[[Services], None] | None = None,
    bindings: BindingSet | None = None,
    **extra: Any,
) -> Iterator[LiveBroker]:
    port = free_port()
    config = make_settings(tmp_path, database_url, port=port, **extra)
    if config.demo:
        from demo import bootstrap

        bootstrap.prepare(config, tmp_path / "demo-keys")
    clock = Clock()
    services = build_services(config, clock=clock, bindings=bindings)
    if customise:
        customise(services)
    app = create_app(config, services)
    with serve_app(app, port) as url:
        broker = LiveBroker(config, services, url, clock)
        try:
            yield broker
        finally:
            broker.http.close()
            services.close()


def demo_key(client_id: str) -> PrivateKey:
    from demo.keys import demo_client_key

    return demo_client_key(client_id)


PORTAL = "ccc-citizen-portal"


def citizen_token(live: LiveBroker, nhs_number: str, client_id: str = PORTAL) -> str:
    """A citizen token for the demo citizen with ``nhs_number``: their ID token from the council's
    demo citizen sign-in, exchanged by the portal at /oauth2/token (at the broker's clock)."""
    from broker.auth.assertion import TOKEN_EXCHANGE_GRANT
    from demo.citizen_identity import demo_citizen_token

    form = live.token_form(client_id, demo_key(client_id))
    form.update(
        grant_type=TOKEN_EXCHANGE_GRANT,
        subject_token=demo_citizen_token(nhs_number, client_id, now=live.clock()),
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
    )
    response = live.http.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
