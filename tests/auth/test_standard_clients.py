"""Standard OAuth clients against a live broker on loopback: RFC 8414 discovery, the broker's
access tokens verified by PyJWT and by authlib, authlib's private_key_jwt client configured as
docs/clients.md shows, and a request with two client authentication methods refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc.jwk import ECKey, KeySet

from broker.auth.keyring import KeyRing, create_token_key
from broker.auth.tokens import TokenService
from tests.support import LiveBroker, live_broker

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LiveBroker]:
    """SQLite: nothing here depends on the database."""
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}") as live:
        yield live


def _metadata(broker: LiveBroker) -> dict[str, Any]:
    response = broker.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return value


def test_the_metadata_names_what_a_standard_client_needs(broker: LiveBroker) -> None:
    meta = _metadata(broker)
    issuer = broker.settings.public_url
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == broker.token_url
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    algs = set(meta["token_endpoint_auth_signing_alg_values_supported"])
    assert {"RS512", "ES256", "EdDSA"} <= algs
    assert not algs & {"none", "HS256", "HS384", "HS512"}
    assert meta["response_types_supported"] == []
    assert {"exchange", "governance", "admin"} <= set(meta["scopes_supported"])
    # What it names is what the broker does: its tokens' issuer, its keys.
    key = broker.register("c1")
    token = broker.token("c1", key)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == meta["issuer"]
    kids = {k["kid"] for k in httpx.get(meta["jwks_uri"]).json()["keys"]}
    assert _header(token)["kid"] in kids


def test_a_token_verifies_with_pyjwt_against_the_published_keys(broker: LiveBroker) -> None:
    key = broker.register("c1", ("exchange", "governance"))
    token = broker.token("c1", key)
    meta = _metadata(broker)
    signing_key = pyjwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=meta["issuer"],
        issuer=meta["issuer"],
    )
    assert claims["client_id"] == "c1"
    assert claims["scope"] == "exchange governance"
    forged = pyjwt.decode(token, options={"verify_signature": False})
    forged["scope"] = "admin"
    head, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(
            f"{head}.{body}.{signature}",
            signing_key.key,
            algorithms=["ES256"],
            audience=meta["issuer"],
        )


def _authlib_validator(issuer: str, jwks_uri: str) -> Any:
    from authlib.oauth2.rfc9068 import JWTBearerTokenValidator

    class BrokerTokens(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return KeySet.import_key_set(httpx.get(jwks_uri).json())

    return BrokerTokens(issuer=issuer, resource_server=issuer)


def test_a_token_verifies_with_authlibs_rfc9068_validator(broker: LiveBroker) -> None:
    """authlib's resource-server validator, with its defaults (it accepts no EdDSA by default)."""
    from authlib.oauth2.rfc6750.errors import InvalidTokenError

    key = broker.register("c1", ("exchange",))
    token = broker.token("c1", key)
    meta = _metadata(broker)
    validator = _authlib_validator(meta["issuer"], meta["jwks_uri"])
    claims = validator.authenticate_token(token)
    validator.validate_token(claims, ["exchange"], None)
    assert claims["client_id"] == "c1"
    with pytest.raises(InvalidTokenError):
        validator.authenticate_token(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))


def test_a_token_verifies_with_authlibs_jose_module(broker: LiveBroker) -> None:
    """The older ``authlib.jose`` API (deprecated by authlib, still common in deployed code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.deprecate import AuthlibDeprecationWarning

        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.jose import JsonWebKey
        from authlib.jose import jwt as authlib_jwt

        key = broker.register("c1")
        token = broker.token("c1", key)
        meta = _metadata(broker)
        keys = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"]).json())
        issuer = {"essential": True, "value": meta["issuer"]}
        claims = authlib_jwt.decode(token, keys, claims_options={"iss": issuer, "aud": issuer})
        claims.validate()
    assert claims["client_id"] == "c1"


def test_tokens_of_an_ed25519_key_kept_from_before_verify_until_it_is_retired(
    broker: LiveBroker,
) -> None:
    """An upgraded deployment whose current key is still Ed25519: it signs as EdDSA (what PyJWT
    knows), a token carrying RFC 9864's name Ed25519 (issued before) still verifies, and after
    rotation new tokens are ES256 while the Ed25519 key stays published until retired."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OKPKey

    keys_dir = broker.settings.keys_dir
    legacy = OKPKey.generate_key("Ed25519", private=True)
    kid = "tok-29990101T000000000000-abcdef"  # sorts last: the current key
    (keys_dir / "token" / f"{kid}.pem").write_bytes(legacy.as_pem(private=True))
    broker.services.keyring.reload()
    key = broker.register("c1")
    token = broker.token("c1", key)
    assert _header(token) == {"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
    published = {k["kid"]: k for k in broker.http.get("/.well-known/jwks.json").json()["keys"]}
    assert published[kid]["alg"] == "EdDSA"
    pyjwt.decode(
        token,
        pyjwt.PyJWK(published[kid]).key,
        algorithms=["EdDSA"],
        audience=broker.settings.public_url,
    )
    assert broker.get("/v1/whoami", token).status_code == 200
    # A token from before, under the name Ed25519, signed by the same key.
    claims = pyjwt.decode(token, options={"verify_signature": False})
    claims["jti"] = "issued-before"
    old = jose_jwt.encode(
        {"alg": "Ed25519", "typ": "at+jwt", "kid": kid}, claims, legacy, algorithms=["Ed25519"]
    )
    assert broker.get("/v1/whoami", old).status_code == 200
    # ... but not under ES256: the algorithm must fit the key.
    p256 = ECKey.generate_key("P-256", private=True)
    confused = jose_jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, p256)
    assert broker.get("/v1/whoami", confused).status_code == 401
    # Rotation: the new key is P-256 and signs ES256; the Ed25519 key still verifies.
    new_kid = create_token_key(keys_dir, now=dt.datetime(2999, 1, 2, tzinfo=dt.UTC))
    broker.services.keyring.reload()
    assert _header(broker.token("c1", key)) == {"alg": "ES256", "typ": "at+jwt", "kid": new_kid}
    assert broker.get("/v1/whoami", token).status_code == 200
    published = {
        k["kid"]: k["alg"] for k in broker.http.get("/.well-known/jwks.json").json()["keys"]
    }
    assert published[kid] == "EdDSA"
    assert published[new_kid] == "ES256"


def test_a_token_service_on_a_fresh_key_ring_signs_es256(tmp_path: Path) -> None:
    from broker.auth.registry import Client

    create_token_key(tmp_path)
    ring = KeyRing.load(tmp_path)
    service = TokenService(ring, "https://broker.example", 300, lambda: 1_800_000_000.0)
    client = Client("c1", "p1", "c1", {}, ("exchange",), "active")
    token = service.issue(client, ["exchange"]).access_token
    assert _header(token)["alg"] == "ES256"
    assert ring.jwks()["keys"][0]["alg"] == "ES256"
    assert ring.jwks()["keys"][0]["crv"] == "P-256"


def _documented_authlib_client() -> str:
    text = (DOCS / "clients.md").read_text()
    found = re.search(
        r"<!-- authlib-client -->\n```python\n(.*?)```\n<!-- /authlib-client -->", text, re.S
    )
    assert found, "docs/clients.md has no authlib client block"
    return found.group(1)


#: authlib's httpx integration prefers the httpx2 package and warns when it falls back to httpx.
HTTPX_FALLBACK = "ignore:The httpx module is deprecated:authlib.deprecate.AuthlibDeprecationWarning"


@pytest.mark.filterwarnings(HTTPX_FALLBACK)
def test_authlibs_private_key_jwt_client_as_documented_gets_a_token(
    broker: LiveBroker, tmp_path: Path
) -> None:
    """The exact code of docs/clients.md, run against the live broker: three tokens in a row
    (each assertion has its own jti), each good for a request."""
    key = broker.register("ed-system", ("exchange",))
    pem = tmp_path / "ed-system.pem"
    pem.write_bytes(key.as_pem(private=True))
    namespace: dict[str, Any] = {
        "KEY_FILE": str(pem),
        "CLIENT_ID": "ed-system",
        "TOKEN_URL": broker.token_url,
    }
    exec(compile(_documented_authlib_client(), "docs/clients.md", "exec"), namespace)  # noqa: S102
    token = namespace["token"]
    assert token["token_type"] == "Bearer"
    assert broker.get("/v1/whoami", token["access_token"]).json()["client_id"] == "ed-system"
    client = namespace["client"]
    for _ in range(2):
        again = client.fetch_token(broker.token_url, grant_type="client_credentials")
        assert broker.get("/v1/whoami", again["access_token"]).status_code == 200
    client.close()


@pytest.mark.filterwarnings(HTTPX_FALLBACK)
def test_authlibs_default_3600_s_assertion_is_refused_naming_the_limit_and_the_docs(
    broker: LiveBroker,
) -> None:
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

    key = broker.register("ed-system", ("exchange",))
    client = OAuth2Client("ed-system", key, token_endpoint_auth_method="private_key_jwt")
    client.register_client_auth_method(
        PrivateKeyJWT(broker.token_url, alg="ES256", headers={"kid": key.thumbprint()})
    )
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(broker.token_url, grant_type="client_credentials")
    client.close()
    assert refused.value.error == "invalid_client"
    description = str(refused.value.description)
    assert "at most 300 seconds ahead" in description
    assert "authlib signs for 3600 s" in description
    assert "docs/clients.md" in description
    metrics = broker.http.get("/metrics").text
    assert 'broker_token_requests_total{outcome="refused",reason="too_long_lived"} 1.0' in metrics


@pytest.mark.parametrize(
    ("extra_headers", "extra_form", "named"),
    [
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"other-client:pw").decode()},
            {},
            "HTTP Basic and client_assertion",
            id="basic-and-assertion",
        ),
        pytest.param(
            {},
            {"client_secret": "s3cret"},
            "client_assertion and client_secret",
            id="secret-and-assertion",
        ),
        pytest.param(
            {"Authorization": "Bearer abc"}, {}, "HTTP Bearer and client_assertion", id="bearer"
        ),
    ],
)
def test_two_client_authentication_methods_in_one_request_are_refused(
    broker: LiveBroker, extra_headers: dict[str, str], extra_form: dict[str, str], named: str
) -> None:
    """RFC 6749 §2.3: one method per request. The finding: Basic credentials of one client and
    the assertion of another got a token."""
    broker.register("other-client")
    key = broker.register("c1")
    form = broker.token_form("c1", key)
    response = broker.http.post("/oauth2/token", data={**form, **extra_form}, headers=extra_headers)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "one way only (RFC 6749 §2.3)" in body["error_description"]
    assert named in body["error_description"]
    assert "access_token" not in body
    metrics = broker.http.get("/metrics").text
    assert (
        'broker_token_requests_total{outcome="refused",reason="several_auth_methods"} 1.0'
        in metrics
    )
    # Nothing was spent: the same assertion alone is accepted (its jti was not stored).
    assert broker.http.post("/oauth2/token", data=form).status_code == 200


def test_http_basic_alone_is_invalid_client_naming_private_key_jwt(broker: LiveBroker) -> None:
    broker.register("c1")
    response = broker.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("c1", "a-password"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "private_key_jwt" in response.json()["error_description"]
    assert "a-password" not in response.text
