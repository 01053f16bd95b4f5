"""Protected routes: access token verification, suspension at once, scopes, key rotation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.auth.keyring import create_token_key, retire_token_key
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


def _tamper_claims(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_no_token_is_401_with_a_problem(broker: LiveBroker) -> None:
    response = broker.get("/v1/whoami")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t + "x", id="signature-changed"),
        pytest.param(lambda t: _tamper_claims(t, scope="admin exchange"), id="scope-forged"),
        pytest.param(lambda t: _tamper_claims(t, sub="other"), id="subject-forged"),
        pytest.param(lambda t: "a.b.c", id="garbage"),
        pytest.param(lambda t: t.split(".")[0] + "..", id="no-signature"),
        pytest.param(lambda t: "x" * 5000, id="oversized"),
    ],
)
def test_tampered_tokens_are_401(broker: LiveBroker, mangle: object) -> None:
    key = broker.register("c1")
    token = broker.token("c1", key)
    assert callable(mangle)
    assert broker.get("/v1/whoami", mangle(token)).status_code == 401


def test_a_token_signed_by_another_broker_is_401(tmp_path: Path, broker: LiveBroker) -> None:
    key = broker.register("c1")
    with live_broker(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.register("c1", key=key)
        foreign = other.token("c1", key)
    assert broker.get("/v1/whoami", foreign).status_code == 401


@pytest.mark.parametrize("used_before", [False, True], ids=["fresh", "already-verified"])
def test_an_expired_token_is_401(broker: LiveBroker, used_before: bool) -> None:
    """Also once its verification is remembered: the expiry is checked on every request."""
    key = broker.register("c1")
    token = broker.token("c1", key)
    if used_before:
        assert broker.get("/v1/whoami", token).status_code == 200
    broker.clock.offset = 301
    response = broker.get("/v1/whoami", token)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_suspension_takes_effect_at_once(broker_any_db: LiveBroker) -> None:
    key = broker_any_db.register("c1")
    token = broker_any_db.token("c1", key)
    assert broker_any_db.get("/v1/whoami", token).status_code == 200
    broker_any_db.services.registry.set_status("c1", "suspended", actor="test")
    response = broker_any_db.get("/v1/whoami", token)
    assert response.status_code == 401
    assert "suspended" in response.json()["detail"]


def test_a_withdrawn_scope_takes_effect_at_once(broker: LiveBroker) -> None:
    key = broker.register("admin-1", ("admin", "exchange"))
    token = broker.token("admin-1", key)
    assert broker.get("/v1/admin/clients", token).status_code == 200
    broker.services.registry.set_scopes("admin-1", ["exchange"], actor="test")
    assert broker.get("/v1/admin/clients", token).status_code == 403


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        pytest.param(("admin",), 200, id="admin-allowed"),
        pytest.param(("exchange",), 403, id="exchange-refused"),
        pytest.param(("governance", "oversight"), 403, id="governance-refused"),
    ],
)
def test_routes_need_their_scope(broker: LiveBroker, scopes: tuple[str, ...], status: int) -> None:
    key = broker.register("c1", scopes)
    response = broker.get("/v1/admin/clients", broker.token("c1", key))
    assert response.status_code == status
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert "admin" in response.json()["detail"]


def test_client_key_rotation(broker_any_db: LiveBroker) -> None:
    old = broker_any_db.register("c1")
    new = new_key("RSA")
    broker_any_db.services.registry.add_key("c1", public_jwk(new), actor="test")
    assert broker_any_db.token("c1", old)
    assert broker_any_db.token("c1", new)
    broker_any_db.services.registry.remove_key("c1", old.thumbprint(), actor="test")
    refused = broker_any_db.http.post("/oauth2/token", data=broker_any_db.token_form("c1", old))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert broker_any_db.token("c1", new)


def test_broker_key_rotation_keeps_issued_tokens_valid(broker_any_db: LiveBroker) -> None:
    key = broker_any_db.register("c1")
    before = broker_any_db.token("c1", key)
    old_kid = broker_any_db.services.keyring.current().kid
    new_kid = create_token_key(broker_any_db.settings.keys_dir)
    broker_any_db.services.keyring.reload()
    after = broker_any_db.token("c1", key)
    assert json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))["kid"] == new_kid
    assert broker_any_db.get("/v1/whoami", before).status_code == 200
    assert broker_any_db.get("/v1/whoami", after).status_code == 200
    published = {k["kid"] for k in broker_any_db.http.get("/.well-known/jwks.json").json()["keys"]}
    assert published == {old_kid, new_kid}
    retire_token_key(broker_any_db.settings.keys_dir, old_kid)
    broker_any_db.services.keyring.reload()
    assert broker_any_db.get("/v1/whoami", before).status_code == 401
    assert broker_any_db.get("/v1/whoami", after).status_code == 200


def test_a_new_key_made_by_another_process_is_picked_up(broker: LiveBroker) -> None:
    """Another broker process rotated: its tokens carry a kid this process has not loaded."""
    from broker.auth.keyring import KeyRing
    from broker.auth.tokens import TokenService

    key = broker.register("c1")
    create_token_key(broker.settings.keys_dir)
    other = TokenService(
        KeyRing.load(broker.settings.keys_dir), broker.settings.public_url, 300, broker.clock
    )
    client = broker.services.registry.get_client("c1")
    token = other.issue(client, ["exchange"]).access_token
    assert key
    assert broker.get("/v1/whoami", token).status_code == 200


def test_the_current_key_cannot_be_retired(broker: LiveBroker) -> None:
    from broker.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="rotate first"):
        retire_token_key(broker.settings.keys_dir, broker.services.keyring.current().kid)
