"""Token exchange (RFC 8693) over HTTP: a partner system exchanges its user's ID token from the
party's identity provider (the demo's CIS2-like national sign-in, registered for the hospital)
for a user-restricted access token; each bad ID token is refused with the RFC's error code and
what is wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.auth.keyring import import_token_key
from broker.identity.token_exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE
from demo.identity import (
    DEMO_ISSUER,
    DEMO_KID,
    demo_id_token,
    demo_idp_key,
    register_demo_identity_provider,
    role_claims,
)
from demo.parties import COUNCIL, HOSPITAL
from tests.exchange.helpers import entry, safeguarding
from tests.support import LiveBroker, demo_key

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
NURSE = "nurse.okoro@r9z.example"
CLIENT = "r9z-ed-safeguarding"


def claims(broker: LiveBroker, **changes: Any) -> dict[str, Any]:
    now = int(broker.clock())
    body: dict[str, Any] = {
        "iss": DEMO_ISSUER,
        "aud": CLIENT,
        "sub": NURSE,
        "name": "Ada Okoro",
        **role_claims(HOSPITAL, NURSE, "safeguarding-nurse"),
        "iat": now - 30,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def id_token(
    broker: LiveBroker, key: ECKey | None = None, kid: str = DEMO_KID, **changes: Any
) -> str:
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    return jwt.encode(header, claims(broker, **changes), key or demo_idp_key())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def exchange(
    broker: LiveBroker, subject_token: str, client_id: str = CLIENT, **extra: str
) -> httpx.Response:
    form = broker.token_form(client_id, demo_key(client_id))
    form.update(grant_type=GRANT, subject_token=subject_token, subject_token_type=ID_TOKEN_TYPE)
    form.update(extra)
    return broker.http.post("/oauth2/token", data=form)


def refused(response: httpx.Response, error: str, words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error, body
    assert words in body["error_description"], body


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_good_id_token_gives_a_user_restricted_token(
    broker: LiveBroker, hospital_idp: None
) -> None:
    response = exchange(broker, id_token(broker))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert answer["token_type"] == "Bearer"
    assert 0 < answer["expires_in"] <= min(300, broker.settings.token_ttl_seconds)
    token = unverified_claims(answer["access_token"])
    assert token["user"] == {"iss": DEMO_ISSUER, "sub": NURSE, "name": "Ada Okoro"}
    assert token["roles"] == ["safeguarding-nurse"]
    assert token["client_id"] == CLIENT
    assert token["act"] == {"sub": CLIENT}
    whoami = broker.get("/v1/whoami", answer["access_token"])
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["user"] == {
        "issuer": DEMO_ISSUER,
        "subject": NURSE,
        "name": "Ada Okoro",
        "roles": ["safeguarding-nurse"],
    }
    assert "citizen" not in whoami.json()


def test_the_token_lives_no_longer_than_the_id_token(
    broker: LiveBroker, hospital_idp: None
) -> None:
    now = int(broker.clock())
    response = exchange(broker, id_token(broker, exp=now + 45))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] <= 45


def test_an_id_token_is_exchanged_once(broker: LiveBroker, hospital_idp: None) -> None:
    token = id_token(broker)
    assert exchange(broker, token).status_code == 200
    refused(exchange(broker, token), "invalid_request", "exchanged already")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"iss": "https://login.elsewhere.example"}, "issuer is not the party's provider"),
        ({"aud": "r9z-discharge"}, "not issued to this system"),
        ({"aud": [CLIENT, "r9z-discharge"], "azp": "r9z-discharge"}, "azp"),
        ({"azp": "r9z-discharge"}, "azp"),
        ({"exp": -1}, "expired"),
        ({"iat": -1200, "exp": 300}, "issued more than 600 seconds ago"),
        ({"auth_time": -13 * 3600}, "signed in more than 12 hours ago"),
        ({"selected_roleid": None}, "no selected_roleid"),
        ({"selected_roleid": "1"}, "is not (once) among the token's nhsid_nrbac_roles"),
    ],
    ids=[
        "unknown-issuer",
        "another-system-of-the-party",
        "azp-another-system",
        "azp-single-audience",
        "expired",
        "issued-too-long-ago",
        "session-too-old",
        "no-selected-role",
        "selected-role-not-held",
    ],
)
def test_a_bad_id_token_is_refused(
    broker: LiveBroker, hospital_idp: None, changes: dict[str, Any], words: str
) -> None:
    now = int(broker.clock())
    relative = {"exp", "iat", "auth_time"}
    resolved = {k: (now + v if k in relative else v) for k, v in changes.items()}
    refused(exchange(broker, id_token(broker, **resolved)), "invalid_request", words)


def test_alg_none_and_hmac_forgeries_are_refused(broker: LiveBroker, hospital_idp: None) -> None:
    payload = _b64(json.dumps(claims(broker)).encode())
    none_header = _b64(json.dumps({"alg": "none", "kid": DEMO_KID}).encode())
    refused(exchange(broker, f"{none_header}.{payload}."), "invalid_request", "'none'")
    hs_header = _b64(json.dumps({"alg": "HS256", "kid": DEMO_KID}).encode())
    secret = demo_idp_key().as_pem(private=False)
    mac = hmac.new(secret, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    refused(exchange(broker, f"{hs_header}.{payload}.{_b64(mac)}"), "invalid_request", "'HS256'")


def test_an_unknown_kid_and_an_altered_payload_are_refused(
    broker: LiveBroker, hospital_idp: None
) -> None:
    other = ECKey.generate_key("P-256", private=True)
    refused(exchange(broker, id_token(broker, key=other, kid="rogue")), "invalid_request", "kid")
    refused(exchange(broker, id_token(broker, key=other)), "invalid_request", "signature")
    head, _, signature = id_token(broker).split(".")
    altered = _b64(json.dumps(claims(broker, role="caldicott-guardian")).encode())
    refused(exchange(broker, f"{head}.{altered}.{signature}"), "invalid_request", "signature")


def test_a_party_without_a_provider_cannot_exchange(broker: LiveBroker, hospital_idp: None) -> None:
    store = broker.services.identity.store
    [directory] = store.for_party(COUNCIL)  # the demo registers one for every party
    store.remove(COUNCIL, actor="test")
    try:
        token = id_token(broker, aud="ccc-childrens-services")
        response = exchange(broker, token, "ccc-childrens-services")
        refused(response, "unauthorized_client", "no identity")
    finally:
        register_demo_identity_provider(store, COUNCIL)
    assert store.for_party(COUNCIL)[0].issuer == directory.issuer


def test_the_hospitals_provider_is_not_the_councils(broker: LiveBroker, hospital_idp: None) -> None:
    store = broker.services.identity.store
    store.add(
        "calderbridge-city-council",
        "https://directory.calderbridge.example",
        actor="test",
        jwks={"keys": [dict(ECKey.generate_key("P-256").as_dict(private=False), kid="c1")]},
    )
    try:
        token = id_token(broker, aud="ccc-childrens-services")
        response = exchange(broker, token, "ccc-childrens-services")
        refused(response, "invalid_request", "issuer is not the party's provider")
        # the council's own provider under the national issuer: its keys, not the national ones
        store.add(
            COUNCIL,
            DEMO_ISSUER,
            actor="test",
            jwks={"keys": [dict(ECKey.generate_key("P-256").as_dict(private=False), kid="c2")]},
        )
        refused(exchange(broker, token, "ccc-childrens-services"), "invalid_request", "kid")
    finally:
        store.remove(COUNCIL, actor="test", issuer="https://directory.calderbridge.example")
        if store.get(COUNCIL, DEMO_ISSUER) is not None:
            store.remove(COUNCIL, actor="test", issuer=DEMO_ISSUER)


def test_an_access_token_is_not_a_subject_token(broker: LiveBroker, hospital_idp: None) -> None:
    application = broker.token(CLIENT, demo_key(CLIENT))
    refused(exchange(broker, application), "invalid_request", "an access token of this broker")
    user_token = exchange(broker, id_token(broker)).json()["access_token"]
    refused(exchange(broker, user_token), "invalid_request", "an access token of this broker")
    other = "r9z-discharge"  # another system of the same party presents the nurse's token
    refused(exchange(broker, user_token, other), "invalid_request", "an access token")


def test_an_id_token_is_not_an_access_token(broker: LiveBroker, hospital_idp: None) -> None:
    response = broker.get("/v1/whoami", id_token(broker))
    assert response.status_code == 401
    assert "not issued by this broker" in response.json()["detail"]


def test_the_exchange_parameters_are_checked(broker: LiveBroker, hospital_idp: None) -> None:
    good = id_token(broker)
    refused(exchange(broker, ""), "invalid_request", "subject_token is required")
    refused(
        exchange(broker, good, subject_token_type="urn:ietf:params:oauth:token-type:jwt"),
        "invalid_request",
        "subject_token_type must be",
    )
    refused(
        exchange(broker, good, actor_token="x", actor_token_type=ID_TOKEN_TYPE),
        "invalid_request",
        "actor_token",
    )
    refused(exchange(broker, good, audience="https://other.example"), "invalid_target", "audience")
    refused(exchange(broker, "not-a-jwt"), "invalid_request", "not a compact JWT")


def test_a_user_restricted_token_is_bound_to_its_client(
    broker: LiveBroker, hospital_idp: None
) -> None:
    """The token's ``act`` must name the client it was issued to: the nurse's token re-labelled
    for another system (even signed with the broker's own key) is refused."""
    user_token = exchange(broker, id_token(broker)).json()["access_token"]
    relabelled = unverified_claims(user_token)
    relabelled.update(sub="r9z-discharge", client_id="r9z-discharge")
    signing = broker.services.keyring.current()
    header = {"alg": signing.algorithm, "typ": "at+jwt", "kid": signing.kid}
    key = import_token_key(signing.pem)
    forged = jwt.encode(header, relabelled, key, algorithms=[signing.algorithm])
    response = broker.get("/v1/whoami", forged)
    assert response.status_code == 401
    assert "bound to another client" in response.json()["detail"]


def test_a_re_encoded_signature_is_still_the_same_id_token(
    broker: LiveBroker, hospital_idp: None
) -> None:
    """ECDSA's (r, s) and (r, n - s) both verify: whoever holds an ID token can make a second
    string of it. The replay check keys on the signed part, so that string is refused too."""
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256's order
    token = id_token(broker)
    head, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = f"{head}.{payload}.{_b64(r + (n - s).to_bytes(32, 'big'))}"
    assert twin != token
    assert exchange(broker, token).status_code == 200
    refused(exchange(broker, twin), "invalid_request", "exchanged already")


def test_the_nurses_demo_cis2_token_asks_a_child_protection_check(
    broker: LiveBroker, hospital_idp: None
) -> None:
    """The README tour: the nurse signs in at the CIS2-like sign-in (``broker idp demo-token``),
    the ED system exchanges her ID token, and asks with the user-restricted token alone."""
    token = demo_id_token(NURSE, "safeguarding-nurse", CLIENT, name="Ada Okoro", now=broker.clock())
    answer = exchange(broker, token)
    assert answer.status_code == 200, answer.text
    access = answer.json()["access_token"]
    assert unverified_claims(access)["roles"] == ["safeguarding-nurse"]
    body = safeguarding()
    del body["requested_by"]
    response = broker.http.post(
        "/v1/exchanges", json=body, headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status_code == 200, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert (logged["user_id"], logged["user_role"]) == (NURSE, "safeguarding-nurse")
    assert logged["details"]["user_issuer"] == DEMO_ISSUER


def test_a_nurse_selecting_her_role_at_another_trust_is_refused(
    broker: LiveBroker, hospital_idp: None
) -> None:
    """She holds roles at R9Z and at RXX: the sign-in's selected role is at RXX, so the hospital's
    system gets no role for her, even though the token also lists her R9Z role."""
    here = role_claims(HOSPITAL, NURSE, "safeguarding-nurse")
    elsewhere = dict(here["nhsid_nrbac_roles"][0], person_roleid="555000000001", org_code="RXX")
    token = id_token(
        broker,
        nhsid_nrbac_roles=[*here["nhsid_nrbac_roles"], elsewhere],
        selected_roleid="555000000001",
    )
    refused(
        exchange(broker, token),
        "invalid_request",
        "subject_token: the selected role '555000000001' was granted at organisation 'RXX', "
        "not at 'R9Z'",
    )
    # a GP practice's role under the same national issuer counts for nothing at the hospital
    at_gp = demo_id_token(NURSE, "gp", CLIENT, party_id="Y99901", now=broker.clock())
    refused(exchange(broker, at_gp), "invalid_request", "organisation 'Y99901', not at 'R9Z'")
