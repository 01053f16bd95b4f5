"""Registering identity providers: validation, one per party and issuer (one issuer for several
parties), logged; ``broker idp``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from joserfc.jwk import ECKey
from sqlalchemy import Engine
from typer.testing import CliRunner

from broker.cli.main import app
from broker.core.errors import Conflict, InvalidInput, NotFound
from broker.db.engine import build_engine
from broker.db.tables import admin_events
from broker.identity.store import IdentityProviderStore
from demo.parties import COUNCIL, HOSPITAL
from tests.identity.conftest import ISSUER, public

KEY = ECKey.generate_key("P-256", private=True)
GOOD_JWKS = {"keys": [public(KEY, "k1")]}


@pytest.mark.parametrize(
    ("options", "location", "message"),
    [
        pytest.param({}, "jwks", "exactly one", id="no-keys"),
        pytest.param(
            {"jwks_url": "https://x.example/jwks", "jwks": GOOD_JWKS},
            "jwks",
            "exactly one",
            id="both",
        ),
        pytest.param(
            {"jwks_url": "http://idp.example/jwks"}, "jwks_url", "must be https", id="plain-http"
        ),
        pytest.param(
            {"jwks": {"keys": [dict(KEY.as_dict(private=True))]}},
            "jwks",
            "no usable public signing key",
            id="private-key",
        ),
        pytest.param(
            {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            "jwks",
            "no usable",
            id="symmetric",
        ),
        pytest.param({"jwks": {"nokeys": 1}}, "jwks", "'keys' list", id="not-a-jwks"),
        pytest.param(
            {"jwks": GOOD_JWKS, "algorithms": ["HS256"]}, "algorithms", "asymmetric", id="hmac"
        ),
        pytest.param(
            {"jwks": GOOD_JWKS, "algorithms": ["none"]}, "algorithms", "asymmetric", id="none"
        ),
        pytest.param(
            {"jwks": GOOD_JWKS, "role_claim": "a..b"}, "role_claim", "dotted", id="role-claim"
        ),
        pytest.param(
            {"jwks": GOOD_JWKS, "role_format": "saml"}, "role_format", "claim, cis2", id="format"
        ),
        pytest.param(
            {"jwks": GOOD_JWKS, "role_format": "cis2"}, "role_map", "role codes", id="cis2-no-map"
        ),
        pytest.param(
            {"jwks": GOOD_JWKS, "role_map": {"R8001": " "}}, "role_map", "non-empty", id="map"
        ),
    ],
)
def test_bad_registrations_name_the_problem(
    engine: Engine, options: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        IdentityProviderStore(engine).add(HOSPITAL, ISSUER, actor="test", **options)
    assert any(p.location == location and message in p.message for p in caught.value.problems)


def test_one_registration_per_party_and_issuer(engine: Engine) -> None:
    store = IdentityProviderStore(engine, refresh_seconds=0)
    with pytest.raises(NotFound, match="no party 'nobody'"):
        store.add("nobody", ISSUER, actor="test", jwks=GOOD_JWKS)
    store.add(HOSPITAL, ISSUER, actor="test", jwks=GOOD_JWKS)
    with pytest.raises(Conflict, match="already has an identity provider with issuer"):
        store.add(HOSPITAL, ISSUER, actor="test", jwks=GOOD_JWKS)
    # the same issuer for another party, and another issuer for the same party
    store.add(COUNCIL, ISSUER, actor="test", jwks=GOOD_JWKS, audiences={"x": "y"})
    store.add(HOSPITAL, "https://other.example", actor="test", jwks=GOOD_JWKS)
    assert [p.issuer for p in store.for_party(HOSPITAL)] == [
        "https://login.r9z.nhs.example",
        "https://other.example",
    ]
    assert {p.party_id: p.org_code for p in store.list() if p.issuer == ISSUER} == {
        HOSPITAL: "R9Z",
        COUNCIL: COUNCIL,  # no ODS code: its id
    }
    with pytest.raises(InvalidInput) as caught:
        store.remove(HOSPITAL, actor="test")
    assert caught.value.problems[0].location == "issuer"
    store.remove(HOSPITAL, actor="test", issuer=ISSUER)
    assert store.get(HOSPITAL, ISSUER) is None
    assert store.get(COUNCIL, ISSUER) is not None
    with pytest.raises(NotFound, match="has no identity provider with issuer"):
        store.remove(HOSPITAL, actor="test", issuer=ISSUER)
    store.remove(HOSPITAL, actor="test")  # its only one left
    assert store.for_party(HOSPITAL) == ()
    with pytest.raises(NotFound, match="has no identity provider"):
        store.remove(HOSPITAL, actor="test")
    with engine.connect() as conn:
        removed = conn.execute(
            sa.select(admin_events.c.details).where(admin_events.c.action == "idp.remove")
        ).all()
    assert len(removed) == 2


runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_the_cli_adds_lists_and_removes_with_admin_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BROKER_DATABASE_URL", url)
    assert (
        run(
            "parties",
            "add",
            "--id",
            HOSPITAL,
            "--name",
            "Hospital",
            "--kind",
            "nhs",
            "--ods-code",
            "R9Z",
        )[0]
        == 0
    )
    jwks_file = tmp_path / "idp.jwks.json"
    jwks_file.write_text(json.dumps(GOOD_JWKS))
    code, out = run(
        "idp",
        "add",
        "--party",
        HOSPITAL,
        "--issuer",
        ISSUER,
        "--jwks",
        str(jwks_file),
        "--audience",
        "r9z-ed-safeguarding=ed-app",
        "--role-format",
        "cis2",
        "--role-map",
        "S8000:G8000:R8001=safeguarding-nurse",
        "--role-map",
        "R8000=ed-doctor",
        "--require",
    )
    assert code == 0, out
    assert "ID tokens required" in out
    code, out = run("idp", "list", "--json")
    assert code == 0
    [item] = json.loads(out)
    assert item["audiences"] == {"r9z-ed-safeguarding": "ed-app"}
    assert (item["jwks"], item["role_format"], item["required"]) == ("inline", "cis2", True)
    assert item["role_map"] == {
        "S8000:G8000:R8001": "safeguarding-nurse",
        "R8000": "ed-doctor",
    }
    code, out = run("idp", "list")
    assert code == 0
    assert "cis2 selected role" in out
    code, out = run("idp", "add", "--party", HOSPITAL, "--issuer", ISSUER, "--audience", "x")
    assert code == 2
    assert "CLIENT_ID=AUDIENCE" in out
    code, out = run("idp", "add", "--party", HOSPITAL, "--issuer", ISSUER, "--role-map", "R1")
    assert code == 2
    assert "PROVIDER_VALUE=ROLE" in out
    assert run("idp", "remove", "--party", HOSPITAL, "--issuer", "https://nope.example")[0] == 2
    assert run("idp", "remove", "--party", HOSPITAL, "--issuer", ISSUER)[0] == 0
    assert run("idp", "remove", "--party", HOSPITAL)[0] == 2
    engine = build_engine(url)
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(admin_events.c.action).where(admin_events.c.action.like("idp.%"))
        ).scalars()
        assert list(actions) == ["idp.add", "idp.remove"]
    engine.dispose()
