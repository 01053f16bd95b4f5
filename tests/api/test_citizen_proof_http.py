"""The citizen, proven, over real HTTP on the demo broker: the council's portal
exchanges the citizen's own ID token for a citizen token; its own token alone reads no report
and decides no preview; a citizen token covers only the person it names. Each refusal is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.audit.search import SearchFilters, search
from broker.auth.assertion import TOKEN_EXCHANGE_GRANT
from demo.citizen_identity import CITIZEN_ISSUER, CITIZEN_KID, citizen_key, demo_citizen_token
from tests.identity.conftest import hmac_forgery, unsigned
from tests.support import PORTAL, LiveBroker, citizen_token, demo_key, live_broker

DAWN = "9990000085"
AMELIA = "9990000018"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("citizen")
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}", demo=True) as live:
        yield live


def exchange(live: LiveBroker, subject_token: str, client_id: str = PORTAL) -> Any:
    form = live.token_form(client_id, demo_key(client_id))
    form.update(
        grant_type=TOKEN_EXCHANGE_GRANT, subject_token=subject_token, subject_token_type=ID_TOKEN
    )
    return live.http.post("/oauth2/token", data=form)


def portal_alone(live: LiveBroker) -> str:
    return live.token(PORTAL, demo_key(PORTAL))


def report(live: LiveBroker, token: str, nhs: str) -> Any:
    return live.get(
        "/v1/subjects/access-report",
        token,
        params={"subject_type": "nhs_number", "subject_value": nhs},
    )


def refusals(live: LiveBroker, resource: str) -> list[dict[str, Any]]:
    reads = search(live.services.engine, SearchFilters(kind="audit-read"), limit=200).items
    return [
        r
        for r in reads
        if r["decision"] == "deny" and (r["details"] or {}).get("resource") == resource
    ]


# --- the exchange ---------------------------------------------------------------------------


def test_a_citizen_token_names_the_citizen_and_nothing_more(demo: LiveBroker) -> None:
    response = exchange(demo, demo_citizen_token(DAWN, now=demo.clock()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["scope"] == "subject-access"
    assert body["expires_in"] <= 300  # no longer than the ID token
    claims = demo.services.tokens.verify(body["access_token"])
    assert claims.citizen is not None
    assert claims.citizen.identifiers == (("nhs_number", DAWN),)
    assert claims.citizen.issuer == CITIZEN_ISSUER
    assert claims.user is None  # no roles: it asks for no exchange
    refused = demo.http.post(
        "/v1/exchanges",
        json={
            "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
            "purpose": "child-protection-check",
            "dataset": "ccc.child-protection",
            "subject": {"type": "nhs_number", "value": AMELIA},
            "requested_by": {"user_id": "x", "role": "safeguarding-nurse"},
        },
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert refused.status_code == 403


def _claims(live: LiveBroker, **overrides: Any) -> dict[str, Any]:
    now = int(live.clock())
    claims: dict[str, Any] = {
        "iss": CITIZEN_ISSUER,
        "aud": PORTAL,
        "sub": "citizen-x",
        "nhs_number": DAWN,
        "identity_proofing_level": "P9",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(live: LiveBroker, **overrides: Any) -> str:
    return jwt.encode(
        {"alg": "ES256", "kid": CITIZEN_KID}, _claims(live, **overrides), citizen_key()
    )


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda live: _signed(live, identity_proofing_level="P5"), "P9 is required"),
        (lambda live: _signed(live, nhs_number=None), "no nhs_number claim"),
        (lambda live: _signed(live, aud="ccc-housing-options"), "not issued to this system"),
        (
            lambda live: _signed(live, iat=int(live.clock()) - 900, exp=int(live.clock()) - 300),
            "expired",
        ),
        (lambda live: unsigned(_claims(live)), "'none' is not accepted"),
        (
            lambda live: hmac_forgery(
                ECKey.import_key(citizen_key().as_dict(private=False)), _claims(live)
            ),
            "'HS256' is not accepted",
        ),
    ],
    ids=["low-assurance", "no-identifier", "wrong-audience", "expired", "alg-none", "hmac"],
)
def test_bad_citizen_id_tokens_are_refused_with_the_rfc_error(
    demo: LiveBroker, make: Any, words: str
) -> None:
    response = exchange(demo, make(demo))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert words in response.json()["error_description"]


def test_a_citizen_id_token_is_exchanged_once(demo: LiveBroker) -> None:
    token = demo_citizen_token(DAWN, now=demo.clock())
    assert exchange(demo, token).status_code == 200
    again = exchange(demo, token)
    assert again.status_code == 400
    assert "exchanged already" in again.json()["error_description"]


def test_the_first_exchange_records_the_link(demo: LiveBroker) -> None:
    from sqlalchemy import select

    from broker.identity.tables import citizen_links

    citizen_token(demo, AMELIA)
    keyring = demo.services.pseudonyms
    with demo.services.engine.connect() as conn:
        rows = conn.execute(select(citizen_links)).all()
    linked = {r.identifier_pseudonym for r in rows}
    assert keyring.pseudonymise("nhs_number", AMELIA).value in linked
    assert all(r.verified_by == "nhs_number" for r in rows)
    assert all(r.assurance == "identity_proofing_level=P9" for r in rows)


# --- the report and previews ----------------------------------------------------------------


def test_the_portal_alone_reads_no_report_and_it_is_logged(demo: LiveBroker) -> None:
    before = len(refusals(demo, "access-report"))
    response = report(demo, portal_alone(demo), DAWN)
    assert response.status_code == 403
    assert "exchange the citizen's ID token at /oauth2/token" in response.json()["detail"]
    logged = refusals(demo, "access-report")
    assert len(logged) == before + 1
    assert logged[0]["client_id"] == PORTAL
    assert DAWN not in str(logged[0])


def test_a_citizen_reads_their_own_report_only(demo: LiveBroker) -> None:
    token = citizen_token(demo, DAWN)
    own = report(demo, token, DAWN)
    assert own.status_code == 200, own.text
    assert own.json()["view"] == "subject"
    before = len(refusals(demo, "access-report"))
    other = report(demo, token, AMELIA)
    assert other.status_code == 403
    assert "another person" in other.json()["detail"]
    logged = refusals(demo, "access-report")
    assert len(logged) == before + 1
    assert logged[0]["user_id"] is not None  # the citizen who asked, by their provider subject
    assert AMELIA not in str(logged[0])


def test_officers_still_read_reports_without_a_citizen(demo: LiveBroker) -> None:
    governance = demo.token("ccc-governance", demo_key("ccc-governance"))
    assert report(demo, governance, DAWN).status_code == 200


def hold(live: LiveBroker, exchange_id: str, nhs: str) -> str:
    return live.services.subjects.previews.hold(
        exchange_id=exchange_id,
        subject=live.services.subjects.pseudonyms.pseudonymise("nhs_number", nhs),
        requester_party="calderbridge-city-council",
        requester_client="ccc-housing-options",
        requester_user="housing-officer-12",
        agreement_id="ISA-PROOF-REUSE",
        dataset="ccc.benefit-claims",
        purpose="homelessness-assessment",
        fields=("claim.type",),
        ttl_seconds=3600,
    ).id


def decide(live: LiveBroker, token: str, hold_id: str, body: dict[str, Any]) -> Any:
    return live.http.post(
        f"/v1/subjects/previews/{hold_id}/decision",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_portal_alone_decides_no_preview_and_it_is_logged(demo: LiveBroker) -> None:
    hold_id = hold(demo, "0190f0a8-0000-7000-8000-0000000000c1", DAWN)
    before = len(refusals(demo, "preview-decision"))
    body = {"decision": "approve", "subject": {"type": "nhs_number", "value": DAWN}}
    response = decide(demo, portal_alone(demo), hold_id, body)
    assert response.status_code == 403
    assert len(refusals(demo, "preview-decision")) == before + 1
    assert demo.services.subjects.previews.get(hold_id).status == "held"
    listed = demo.get(
        "/v1/subjects/previews",
        portal_alone(demo),
        params={"subject_type": "nhs_number", "subject_value": DAWN},
    )
    assert listed.status_code == 403


def test_a_preview_about_another_person_cannot_be_decided(demo: LiveBroker) -> None:
    others = hold(demo, "0190f0a8-0000-7000-8000-0000000000c2", AMELIA)
    token = citizen_token(demo, DAWN)
    before = len(refusals(demo, "preview-decision"))
    hidden = decide(demo, token, others, {"decision": "approve"})
    unknown = decide(demo, token, "no-such-hold", {"decision": "approve"})
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"].replace(others, "X") == unknown.json()["detail"].replace(
        "no-such-hold", "X"
    )
    assert demo.services.subjects.previews.get(others).status == "held"
    named_other = decide(
        demo,
        token,
        others,
        {"decision": "approve", "subject": {"type": "nhs_number", "value": AMELIA}},
    )
    assert named_other.status_code == 403
    assert len(refusals(demo, "preview-decision")) == before + 3


def test_a_citizen_approves_their_own_preview(demo: LiveBroker) -> None:
    own = hold(demo, "0190f0a8-0000-7000-8000-0000000000c3", DAWN)
    token = citizen_token(demo, DAWN)
    listed = demo.get(
        "/v1/subjects/previews",
        token,
        params={"subject_type": "nhs_number", "subject_value": DAWN},
    )
    assert own in [h["id"] for h in listed.json()["items"]]
    approved = decide(demo, token, own, {"decision": "approve"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    decisions = search(demo.services.engine, SearchFilters(kind="admin"), limit=50).items
    logged = next(e for e in decisions if (e["details"] or {}).get("hold_id") == own)
    assert logged["details"]["action"] == "preview.approved"
    assert logged["user_id"] is not None  # the citizen who decided, by their provider subject


def test_the_cli_exchanges_a_citizen_id_token_as_the_readme_does(demo: LiveBroker) -> None:
    from typer.testing import CliRunner

    from broker.cli.main import app
    from demo.keys import demo_client_key_path

    runner = CliRunner()
    minted = runner.invoke(app, ["idp", "citizen-token", "--nhs-number", DAWN, "--demo"])
    assert minted.exit_code == 0, minted.output
    args = ["token", "--client-id", PORTAL, "--key", str(demo_client_key_path(PORTAL))]
    args += ["--url", demo.url, "--subject-token", minted.stdout.strip()]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    claims = demo.services.tokens.verify(result.stdout.strip())
    assert claims.citizen is not None
    assert claims.citizen.identifiers == (("nhs_number", DAWN),)
