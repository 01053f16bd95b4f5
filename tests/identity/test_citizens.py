"""A citizen's ID token (pure checks), the citizen providers' registrations and the link of a
citizen's identity to their NHS number (its pseudonym only), and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from broker.cli.main import app
from broker.core.errors import Conflict, InvalidInput, NotFound
from broker.core.pseudonym import PseudonymKeyring, generate_key
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.db.tables import admin_events
from broker.identity.citizen_store import (
    CitizenLinkConflict,
    CitizenLinkStore,
    CitizenProviderStore,
)
from broker.identity.citizens import CitizenRules, check_citizen_token, citizen_claims
from broker.identity.errors import IdTokenRejected
from broker.identity.id_tokens import NamedKey, ProviderRules
from broker.identity.tables import citizen_links
from demo.citizen_identity import CITIZEN_ISSUER, citizen_jwks, demo_citizen_token
from demo.parties import COUNCIL
from tests.identity.conftest import NOW, hmac_forgery, public, unsigned

NHS = "9990000085"
OTHER_NHS = "9990000018"
RULES = CitizenRules()
PROVIDER = ProviderRules(issuer=CITIZEN_ISSUER, audience="ccc-citizen-portal")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": CITIZEN_ISSUER,
        "aud": "ccc-citizen-portal",
        "sub": "c-1",
        "nhs_number": NHS,
        "identity_proofing_level": "P9",
        "iat": int(NOW) - 30,
        "exp": int(NOW) + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_the_citizen_claims_name_the_person_at_the_required_assurance() -> None:
    citizen = citizen_claims(claims(nhs_number="999 000 0085"), CITIZEN_ISSUER, "c-1", RULES)
    assert (citizen.identifier_type, citizen.identifier) == ("nhs_number", NHS)
    assert citizen.assurance == "identity_proofing_level=P9"
    assert citizen.verified_by == "nhs_number"
    assert NHS not in repr(citizen)


@pytest.mark.parametrize(
    ("overrides", "reason", "words"),
    [
        ({"identity_proofing_level": "P5"}, "assurance", "P9 is required"),
        ({"identity_proofing_level": None}, "assurance", "P9 is required"),
        ({"nhs_number": None}, "identifier", "no nhs_number claim"),
        ({"nhs_number": "9990000086"}, "identifier", "not a valid nhs_number"),
        ({"nhs_number": 9990000085}, "identifier", "no nhs_number claim"),
    ],
)
def test_the_citizen_claims_refuse_what_does_not_prove_the_person(
    overrides: dict[str, Any], reason: str, words: str
) -> None:
    with pytest.raises(IdTokenRejected) as caught:
        citizen_claims(claims(**overrides), CITIZEN_ISSUER, "c-1", RULES)
    assert caught.value.reason == reason
    assert words in caught.value.problems[0].message


def demo_keys() -> list[NamedKey]:
    from broker.identity.jwks import parse_jwks

    return parse_jwks(citizen_jwks())


def test_a_demo_citizen_token_passes_every_id_token_check() -> None:
    token = demo_citizen_token(NHS, now=NOW)
    citizen = check_citizen_token(token, demo_keys(), PROVIDER, RULES, now=NOW + 5)
    assert citizen.identifier == NHS
    assert citizen.expires_at == NOW + 300
    assert len(citizen.fingerprint) == 64


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: unsigned(claims()), "algorithm"),
        (lambda: hmac_forgery(ECKey.import_key(citizen_jwks()["keys"][0]), claims()), "algorithm"),
        (lambda: demo_citizen_token(NHS, "ccc-housing-options", now=NOW), "audience"),
        (lambda: demo_citizen_token(NHS, now=NOW - 900), "expired"),
        (lambda: demo_citizen_token(NHS, now=NOW, proofing_level="P5"), "assurance"),
    ],
    ids=["alg-none", "hmac", "another-system", "expired", "low-assurance"],
)
def test_bad_citizen_tokens_are_refused(token: Any, reason: str) -> None:
    with pytest.raises(IdTokenRejected) as caught:
        check_citizen_token(token(), demo_keys(), PROVIDER, RULES, now=NOW + 5)
    assert caught.value.reason == reason


# --- registrations and links ----------------------------------------------------------------


def test_registrations_are_checked_and_logged(engine: Engine) -> None:
    store = CitizenProviderStore(engine)
    key = ECKey.generate_key("P-256", private=True)
    jwks = {"keys": [public(key, "k1")]}
    with pytest.raises(InvalidInput) as caught:
        store.add(
            COUNCIL,
            "https://login.example",
            actor="admin",
            name="NHS login",
            rules=CitizenRules(identifier_type="uprn", assurance_values=frozenset()),
            jwks=jwks,
        )
    assert {p.location for p in caught.value.problems} == {"identifier_type", "assurance_values"}
    with pytest.raises(NotFound):
        store.add("nobody", "https://x.example", actor="a", name="x", rules=RULES, jwks=jwks)
    added = store.add(
        COUNCIL, "https://login.example", actor="admin", name="NHS login", rules=RULES, jwks=jwks
    )
    assert store.list(COUNCIL) == [added]
    with pytest.raises(Conflict):
        store.add(COUNCIL, "https://login.example", actor="a", name="x", rules=RULES, jwks=jwks)
    store.remove(COUNCIL, "https://login.example", actor="admin")
    assert store.get(COUNCIL, "https://login.example") is None
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(admin_events)).all()]
    assert actions.count("citizen-idp.add") == 1
    assert actions.count("citizen-idp.remove") == 1


def test_the_demo_citizen_key_is_refused_outside_the_demo(engine: Engine) -> None:
    store = CitizenProviderStore(engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS)
    with pytest.raises(InvalidInput, match="refused"):
        store.add(COUNCIL, CITIZEN_ISSUER, actor="a", name="x", rules=RULES, jwks=citizen_jwks())


def test_the_first_exchange_links_the_identity_by_pseudonym_only(engine: Engine) -> None:
    keyring = PseudonymKeyring([generate_key("v1")])
    links = CitizenLinkStore(engine)

    def link(nhs: str) -> tuple[Any, bool]:
        return links.link(
            issuer=CITIZEN_ISSUER,
            subject="c-1",
            identifier=keyring.pseudonymise("nhs_number", nhs),
            all_pseudonyms=[p.value for p in keyring.all_pseudonyms("nhs_number", nhs)],
            identifier_type="nhs_number",
            verified_by="nhs_number",
            assurance="identity_proofing_level=P9",
            party_id=COUNCIL,
            client_id="ccc-citizen-portal",
            now_ms=1,
        )

    first, created = link(NHS)
    assert created
    assert first.identifier_pseudonym == keyring.pseudonymise("nhs_number", NHS).value
    again, created = link(NHS)
    assert (again, created) == (first, False)
    with pytest.raises(CitizenLinkConflict):
        link(OTHER_NHS)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(citizen_links)).all()]
        events = [r for r in conn.execute(select(admin_events)).all() if r.action == "citizen.link"]
    assert len(rows) == 1
    assert len(events) == 1
    assert NHS not in json.dumps(rows) + str(events[0].details)


# --- the CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_the_cli_adds_lists_and_removes_citizen_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    code, out = run("parties", "add", "--id", COUNCIL, "--name", "Council", "--kind", "council")
    assert code == 0, out
    jwks_file = tmp_path / "citizen.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public(ECKey.generate_key("P-256"), "k1")]}))
    add = ("idp", "citizen", "add", "--party", COUNCIL, "--issuer", "https://auth.login.nhs.uk")
    code, out = run(*add, "--name", "NHS login", "--jwks", str(jwks_file))
    assert code == 0, out
    code, out = run("idp", "citizen", "list", "--json")
    [item] = json.loads(out)
    assert (item["identifier_claim"], item["assurance_values"]) == ("nhs_number", ["P9"])
    code, out = run(*add, "--name", "x", "--jwks", str(jwks_file), "--identifier-type", "uprn")
    assert code == 2
    assert "identifier_type" in out
    code, out = run("idp", "citizen", "remove", "--party", COUNCIL, "--issuer", item["issuer"])
    assert code == 0, out
    assert json.loads(run("idp", "citizen", "list", "--json")[1]) == []


def test_the_demo_citizen_token_is_refused_outside_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BROKER_DEMO", raising=False)
    code, out = run("idp", "citizen-token", "--nhs-number", NHS)
    assert code == 2
    assert "refused outside --demo" in out
    code, out = run("idp", "citizen-token", "--nhs-number", NHS, "--demo")
    assert code == 0, out
    assert out.strip().count(".") == 2
