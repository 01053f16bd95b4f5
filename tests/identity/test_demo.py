"""The demo's identity providers (one for every party): trusted in ``--demo``, refused outside
it; ``broker idp demo-token`` only in demo mode."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from broker.auth.registry import Registry
from broker.cli.main import app
from broker.core.errors import InvalidInput
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.identity.jwks import JwksCache, parse_jwks
from broker.identity.service import IdentityProviders
from broker.identity.store import IdentityProviderStore
from demo.identity import (
    CIS2,
    DEMO_ISSUER,
    DEMO_PROVIDERS,
    demo_id_token,
    demo_jwks,
    register_demo_identity_provider,
    register_demo_identity_providers,
)
from demo.parties import DEMO_CLIENTS, DEMO_PARTIES, HOSPITAL

NOW = 1_795_900_000


class NoFetch:
    def fetch(self, url: str) -> dict[str, object]:
        raise AssertionError("inline keys need no fetch")


@pytest.fixture
def demo_idp(engine: Engine) -> IdentityProviders:
    registry = Registry(engine)
    known = {p.id for p in registry.list_parties()}
    for party in DEMO_PARTIES:
        if party.id not in known:
            registry.add_party(party.id, party.name, party.kind, party.ods_code, actor="test")
    return IdentityProviders(IdentityProviderStore(engine, refresh_seconds=0), JwksCache(NoFetch()))


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_every_party_has_a_demo_provider(demo_idp: IdentityProviders) -> None:
    registered = register_demo_identity_providers(demo_idp.store)
    assert register_demo_identity_providers(demo_idp.store) == registered  # once only
    assert {p.party_id for p in registered} == {p.id for p in DEMO_PARTIES}
    national = [p for p in registered if p.issuer == CIS2.issuer]
    assert sorted(p.party_id for p in national) == ["R9Z", "Y99901", "Y99902"]
    assert {p.role_format for p in national} == {"cis2"}


@pytest.mark.parametrize(
    ("client", "role"),
    [
        ("r9z-ed-safeguarding", "safeguarding-nurse"),
        ("r9z-ed-safeguarding", "ed-doctor"),
        ("y99901-gp-system", "gp"),
        ("wcp-mash", "mash-officer"),
        ("ccc-childrens-services", "social-worker"),
        ("ccc-housing-options", "housing-options-officer"),
        ("ccc-school-admissions", "admissions-officer"),
        ("ccc-revenues-benefits", "revenues-officer"),
        ("ccc-adult-social-care", "discharge-coordinator"),
    ],
)
def test_a_demo_token_gives_the_role_at_its_party(
    demo_idp: IdentityProviders, client: str, role: str
) -> None:
    register_demo_identity_providers(demo_idp.store)
    token = demo_id_token("user-1", role, client, now=NOW)
    party = next(c.party_id for c in DEMO_CLIENTS if c.id == client)
    assert demo_idp.verify_subject_token(party, client, token, NOW + 10).roles == (role,)


def test_the_hospital_token_is_cis2_shaped(demo_idp: IdentityProviders) -> None:
    register_demo_identity_provider(demo_idp.store)
    token = demo_id_token("hospital-ed-nurse-17", "safeguarding-nurse", now=NOW)
    claims = _claims(token)
    [entry] = claims["nhsid_nrbac_roles"]
    assert claims["selected_roleid"] == entry["person_roleid"]
    assert (entry["org_code"], entry["role_code"]) == ("R9Z", "S8000:G8000:R8001")
    user = demo_idp.verify_id_token(HOSPITAL, "r9z-ed-safeguarding", token, NOW + 10)
    assert (user.user_id, user.role, user.issuer) == (
        "hospital-ed-nurse-17",
        "safeguarding-nurse",
        DEMO_ISSUER,
    )
    # Optional: break-glass without an ID token goes on as asserted and the policy refuses it.
    assert not demo_idp.requires_id_token(HOSPITAL, break_glass=True)


def test_a_role_the_party_does_not_give_cannot_be_minted() -> None:
    with pytest.raises(ValueError, match="gives no role 'gp'"):
        demo_id_token("x", "gp", "wcp-mash", now=NOW)  # the police map only MASH officers


@pytest.mark.parametrize("provider", DEMO_PROVIDERS, ids=lambda p: p.key_name)
def test_the_demo_keys_are_refused_outside_the_demo(engine: Engine, provider: Any) -> None:
    store = IdentityProviderStore(engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS)
    with pytest.raises(InvalidInput) as caught:
        store.add(HOSPITAL, provider.issuer, actor="test", jwks=demo_jwks(provider))
    assert "demo keys only in --demo" in caught.value.problems[0].message
    assert parse_jwks(demo_jwks(provider), PUBLISHED_KEY_THUMBPRINTS) == []


def test_the_cli_prints_a_demo_token_in_demo_mode_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_DEMO", raising=False)
    args = ["idp", "demo-token", "--user", "nurse-1", "--role", "safeguarding-nurse"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2
    assert "works only with --demo" in refused.output
    assert "eyJ" not in refused.output
    result = CliRunner().invoke(
        app,
        [
            *args[:2],
            "--demo",
            "--party",
            "west-calder-police",
            "--client",
            "wcp-mash",
            "--user",
            "officer-7",
            "--role",
            "mash-officer",
            "--name",
            "DC Hale",
        ],
    )
    assert result.exit_code == 0, result.output
    claims = _claims(result.stdout.strip())
    assert (claims["aud"], claims["groups"], claims["name"]) == (
        "wcp-mash",
        ["WCP-MASH-Officers"],
        "DC Hale",
    )
    monkeypatch.setenv("BROKER_DEMO", "1")
    assert CliRunner().invoke(app, args).exit_code == 0
    bad = CliRunner().invoke(app, [*args[:2], "--demo", "--user", "u", "--role", "gp"])
    assert bad.exit_code == 2
    assert "gives no role 'gp'" in bad.output
