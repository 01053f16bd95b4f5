"""The demo hospital's smartcard sign-in: trusted in ``--demo``, refused outside it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from broker.cli.main import app
from broker.core.errors import InvalidInput
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.identity.jwks import JwksCache, parse_jwks
from broker.identity.service import IdentityProviders
from broker.identity.store import IdentityProviderStore
from demo.identity import (
    DEMO_ISSUER,
    demo_id_token,
    demo_jwks,
    register_demo_identity_provider,
)
from demo.parties import HOSPITAL


class NoFetch:
    def fetch(self, url: str) -> dict[str, object]:
        raise AssertionError("inline keys need no fetch")


def test_a_demo_token_verifies_against_the_demo_provider(engine: Engine) -> None:
    idp = IdentityProviders(IdentityProviderStore(engine), JwksCache(NoFetch()))
    provider = register_demo_identity_provider(idp.store)
    assert register_demo_identity_provider(idp.store) == provider  # once only
    token = demo_id_token("hospital-ed-nurse-17", "safeguarding-nurse", now=1_795_900_000)
    user = idp.verify_id_token(HOSPITAL, "r9z-ed-safeguarding", token, 1_795_900_010)
    assert (user.user_id, user.role, user.issuer) == (
        "hospital-ed-nurse-17",
        "safeguarding-nurse",
        DEMO_ISSUER,
    )
    # Optional: break-glass without an ID token goes on as asserted and the policy refuses it.
    assert not idp.requires_id_token(HOSPITAL, break_glass=True)


def test_the_demo_key_is_refused_outside_the_demo(engine: Engine) -> None:
    store = IdentityProviderStore(engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS)
    with pytest.raises(InvalidInput) as caught:
        store.add(HOSPITAL, DEMO_ISSUER, actor="test", jwks=demo_jwks())
    assert "demo keys only in --demo" in caught.value.problems[0].message
    assert parse_jwks(demo_jwks(), PUBLISHED_KEY_THUMBPRINTS) == []


def test_the_cli_prints_a_demo_token() -> None:
    result = CliRunner().invoke(
        app, ["idp", "demo-token", "--user", "nurse-1", "--role", "safeguarding-nurse"]
    )
    assert result.exit_code == 0
    assert result.stdout.count(".") == 2
