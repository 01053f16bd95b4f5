"""ID tokens checked against a real JWKS endpoint on loopback: every rule, and the key cache."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from broker.identity.errors import (
    IdentityProviderUnavailable,
    IdTokenRejected,
    IdTokenRequired,
    NoIdentityProvider,
)
from broker.identity.id_tokens import VerifiedUser
from broker.identity.service import IdentityProviders
from demo.parties import COUNCIL, HOSPITAL
from tests.identity.conftest import (
    CLIENT,
    ISSUER,
    NOW,
    JwksServer,
    MonoClock,
    hmac_forgery,
    mint,
    public,
    unsigned,
)


def _register(idp: IdentityProviders, jwks_server: JwksServer, **options: Any) -> None:
    idp.store.add(HOSPITAL, ISSUER, actor="test", jwks_url=jwks_server.url, **options)


def test_a_good_token_names_the_user_and_role(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey
) -> None:
    _register(idp, jwks_server)
    user = idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)
    assert user == VerifiedUser("hospital-ed-nurse-17", "safeguarding-nurse", ISSUER)


OTHER = ECKey.generate_key("P-256", private=True)


@pytest.mark.parametrize(
    ("token", "reason", "match"),
    [
        pytest.param(lambda k: "not-a-jwt", "malformed", "not a compact JWT", id="malformed"),
        pytest.param(
            lambda k: unsigned({"iss": ISSUER, "aud": CLIENT}),
            "algorithm",
            "'none' is not accepted",
            id="alg-none",
        ),
        pytest.param(
            # The classic forgery: HMAC keyed with the provider's public key.
            lambda k: hmac_forgery(k, {"iss": ISSUER, "aud": CLIENT, "sub": "x", "role": "r"}),
            "algorithm",
            "'HS256' is not accepted",
            id="hmac-with-public-key",
        ),
        pytest.param(lambda k: mint(OTHER), "signature", "does not verify", id="other-key"),
        pytest.param(lambda k: mint(k, kid="k9"), "key", "no key", id="unknown-kid"),
        pytest.param(
            lambda k: mint(k, iss="https://evil.example"), "issuer", "issuer", id="issuer"
        ),
        pytest.param(lambda k: mint(k, aud="other-system"), "audience", "not issued", id="aud"),
        pytest.param(lambda k: mint(k, aud=None), "audience", "not issued", id="no-aud"),
        pytest.param(
            lambda k: mint(k, aud=[CLIENT, "other"]), "audience", "azp", id="aud-list-no-azp"
        ),
        pytest.param(lambda k: mint(k, exp=int(NOW) - 31), "expired", "expired", id="expired"),
        pytest.param(lambda k: mint(k, exp=None), "claims", "exp claim", id="no-exp"),
        pytest.param(lambda k: mint(k, exp="soon"), "claims", "exp claim", id="exp-string"),
        pytest.param(
            lambda k: mint(k, iat=int(NOW) - 631), "too-old", "more than 600", id="iat-too-old"
        ),
        pytest.param(lambda k: mint(k, iat=None), "claims", "iat claim", id="no-iat"),
        pytest.param(lambda k: mint(k, iat=int(NOW) + 120), "issued-at", "future", id="iat-future"),
        pytest.param(
            lambda k: mint(k, nbf=int(NOW) + 120), "not-yet-valid", "not valid yet", id="nbf"
        ),
        pytest.param(lambda k: mint(k, sub=None), "user", "no sub claim", id="no-sub"),
        pytest.param(lambda k: mint(k, role=None), "role", "no role", id="no-role"),
        pytest.param(lambda k: mint(k, role=["a", "b"]), "role", "several roles", id="roles"),
    ],
)
def test_bad_tokens_are_rejected_with_a_reason(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey, token: Any, reason: str, match: str
) -> None:
    _register(idp, jwks_server)
    with pytest.raises(IdTokenRejected, match=match) as caught:
        idp.verify_id_token(HOSPITAL, CLIENT, token(key), NOW)
    assert caught.value.reason == reason
    assert caught.value.problems[0].location == "requested_by.id_token"


def test_an_algorithm_outside_the_providers_list_is_rejected(
    idp: IdentityProviders, jwks_server: JwksServer
) -> None:
    rsa = RSAKey.generate_key(2048, private=True)
    jwks_server.jwks = {"keys": [public(rsa, "k1")]}
    _register(idp, jwks_server, algorithms=["ES256"])
    with pytest.raises(IdTokenRejected, match="'RS256' is not accepted"):
        idp.verify_id_token(HOSPITAL, CLIENT, mint(rsa, alg="RS256"), NOW)


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(lambda: RSAKey.generate_key(2048, private=True), "RS256", id="RS256"),
        pytest.param(lambda: RSAKey.generate_key(2048, private=True), "PS256", id="PS256"),
        pytest.param(lambda: ECKey.generate_key("P-256", private=True), "ES256", id="ES256"),
        pytest.param(lambda: OKPKey.generate_key("Ed25519", private=True), "Ed25519", id="Ed25519"),
    ],
)
def test_each_accepted_algorithm_verifies(
    idp: IdentityProviders, jwks_server: JwksServer, make: Any, alg: str
) -> None:
    signing = make()
    jwks_server.jwks = {"keys": [public(signing, "k1")]}
    _register(idp, jwks_server)
    assert idp.verify_id_token(HOSPITAL, CLIENT, mint(signing, alg=alg), NOW).role == (
        "safeguarding-nurse"
    )


def test_the_audience_is_the_systems_own_client_id_at_the_provider(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey
) -> None:
    _register(idp, jwks_server, audiences={CLIENT: "ed-safeguarding-app"})
    token = mint(key, aud="ed-safeguarding-app")
    assert idp.verify_id_token(HOSPITAL, CLIENT, token, NOW).user_id == "hospital-ed-nurse-17"
    with pytest.raises(IdTokenRejected, match="not issued to this system"):
        idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)


def test_several_audiences_pass_with_azp(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey
) -> None:
    _register(idp, jwks_server)
    token = mint(key, aud=[CLIENT, "other"], azp=CLIENT)
    assert idp.verify_id_token(HOSPITAL, CLIENT, token, NOW).role == "safeguarding-nurse"


def test_a_nested_role_claim_and_the_asserted_role_among_several(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey
) -> None:
    _register(idp, jwks_server, role_claim="realm_access.roles", user_claim="preferred_username")
    token = mint(
        key,
        role=None,
        preferred_username="nurse.jones",
        realm_access={"roles": ["ed-doctor", "safeguarding-nurse"]},
    )
    user = idp.verify_id_token(HOSPITAL, CLIENT, token, NOW, asserted_role="safeguarding-nurse")
    assert (user.user_id, user.role) == ("nurse.jones", "safeguarding-nurse")
    with pytest.raises(IdTokenRejected, match="'gp' is not among the token's roles"):
        idp.verify_id_token(HOSPITAL, CLIENT, token, NOW, asserted_role="gp")


def test_keys_are_cached_and_refetched_once_for_a_new_kid(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey, mono: MonoClock
) -> None:
    _register(idp, jwks_server)
    for _ in range(3):
        idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)
    assert jwks_server.fetches == 1
    # The provider rotates: a token with the new kid makes the broker look again, once.
    rotated = ECKey.generate_key("P-256", private=True)
    mono.now += 31  # refreshes for unknown kids: at most one per 30 seconds
    jwks_server.jwks = {"keys": [public(key, "k1"), public(rotated, "k2")]}
    assert idp.verify_id_token(HOSPITAL, CLIENT, mint(rotated, kid="k2"), NOW).role
    assert jwks_server.fetches == 2
    # Forged kids cannot make it fetch again and again.
    for _ in range(3):
        with pytest.raises(IdTokenRejected, match="no key"):
            idp.verify_id_token(HOSPITAL, CLIENT, mint(key, kid="forged"), NOW)
    assert jwks_server.fetches == 2


def test_expired_cache_is_refreshed_and_stale_keys_serve_an_outage(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey, mono: MonoClock
) -> None:
    _register(idp, jwks_server)
    idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)
    mono.now += 301
    idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)
    assert jwks_server.fetches == 2
    jwks_server.status = 500
    mono.now += 301
    assert idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW).role  # last good keys
    assert jwks_server.fetches == 3


@pytest.mark.parametrize(
    ("status", "delay"),
    [pytest.param(500, 0.0, id="server-error"), pytest.param(200, 2.0, id="timeout")],
)
def test_no_keys_at_all_fails_closed(
    idp: IdentityProviders, jwks_server: JwksServer, key: ECKey, status: int, delay: float
) -> None:
    jwks_server.status, jwks_server.delay_seconds = status, delay
    _register(idp, jwks_server)
    with pytest.raises(IdentityProviderUnavailable, match="could not be fetched"):
        idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW)


def test_inline_keys_need_no_endpoint(idp: IdentityProviders, key: ECKey) -> None:
    idp.store.add(HOSPITAL, ISSUER, actor="test", jwks={"keys": [public(key, "k1")]})
    assert idp.verify_id_token(HOSPITAL, CLIENT, mint(key), NOW).user_id == "hospital-ed-nurse-17"


def test_a_token_for_a_party_without_a_provider_is_refused(
    idp: IdentityProviders, key: ECKey
) -> None:
    with pytest.raises(NoIdentityProvider, match="has registered no identity provider"):
        idp.verify_id_token(COUNCIL, "ccc-childrens-services", mint(key), NOW)


@pytest.mark.parametrize(
    ("provider", "break_glass", "required"),
    [
        pytest.param(None, False, False, id="no-provider"),
        pytest.param(None, True, False, id="no-provider-break-glass"),
        pytest.param("optional", False, False, id="optional"),
        # Break-glass without an ID token proceeds as asserted; the policy refuses it.
        pytest.param("optional", True, False, id="optional-break-glass"),
        pytest.param("required", False, True, id="required"),
        pytest.param("required", True, True, id="required-break-glass"),
    ],
)
def test_when_a_token_is_required(
    idp: IdentityProviders, key: ECKey, provider: str | None, break_glass: bool, required: bool
) -> None:
    if provider is not None:
        idp.store.add(
            HOSPITAL,
            ISSUER,
            actor="test",
            jwks={"keys": [public(key, "k1")]},
            required=provider == "required",
        )
    assert idp.requires_id_token(HOSPITAL, break_glass) is required
    if required:
        with pytest.raises(IdTokenRequired, match="requires an ID token"):
            idp.check_request(HOSPITAL, CLIENT, None, break_glass=break_glass, now=NOW)
    else:
        assert idp.check_request(HOSPITAL, CLIENT, None, break_glass=break_glass, now=NOW) is None
