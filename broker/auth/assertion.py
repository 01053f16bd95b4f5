"""Client authentication with ``private_key_jwt`` (RFC 7523 §2.2, as NHS England's APIs use it).

:func:`authenticate_client` takes the token request's form fields and returns the
authenticated :class:`~broker.auth.registry.Client`, or raises
:class:`~broker.core.errors.OAuthError` with the RFC 6749 §5.2 code. The order of checks
matters: nothing is written (no ``jti`` stored) before the signature has verified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from joserfc.errors import JoseError

from broker.auth.jose import (
    CLIENT_ASSERTION_ALGORITHMS,
    KEY_TYPE_FOR_ALG,
    MalformedJose,
    PublicKey,
    import_public_jwk,
    unverified_parts,
    verify_compact,
)
from broker.auth.registry import Client
from broker.auth.replay import ReplayStore
from broker.core.errors import OAuthError

GRANT_TYPE = "client_credentials"
#: RFC 8693 token exchange: an ID token for a user-restricted access token (broker/api/oauth.py).
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
GRANT_TYPES = (GRANT_TYPE, TOKEN_EXCHANGE_GRANT)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_JTI_LENGTH = 200
#: The lifetime OPA's ``plugins/rest/auth.go`` gives its client assertions (``exp`` ten minutes
#: ahead, not configurable). Accepted only from clients whose only scope is ``bundle``.
BUNDLE_CLIENT_MAX_LIFETIME_SECONDS = 600
BUNDLE_SCOPE = "bundle"
#: Where a partner's developer reads how to configure a client library (authlib's assertion
#: lifetime in particular); named in the refusal of an assertion that lives too long.
CLIENT_GUIDE = "docs/clients.md"


class ClientLookup(Protocol):
    def find_client(self, client_id: str) -> Client | None: ...


@dataclass(frozen=True)
class AssertionRules:
    """What a valid assertion must satisfy. Times in seconds."""

    audience: str
    max_lifetime_seconds: int = 300
    clock_skew_seconds: int = 30
    max_bytes: int = 8192
    refused_key_thumbprints: frozenset[str] = frozenset()
    """Keys never accepted (the committed demo keys, outside ``--demo``)."""


def _fail(reason: str, detail: str, error: str = "invalid_client") -> OAuthError:
    status = 401 if error == "invalid_client" else 400
    return OAuthError(error=error, detail=detail, reason=reason, status_code=status)


def _auth_methods(form: Mapping[str, str], authorization: str | None) -> list[str]:
    """The client authentication methods a token request uses (names safe to show: no values)."""
    used: list[str] = []
    if authorization:
        scheme = authorization.strip().split(" ", 1)[0].lower()
        known = {"basic": "HTTP Basic", "bearer": "HTTP Bearer", "dpop": "HTTP DPoP"}
        used.append(known.get(scheme, "an Authorization header"))
    if form.get("client_assertion") or form.get("client_assertion_type"):
        used.append("client_assertion")
    if form.get("client_secret"):  # a blank parameter counts as omitted (RFC 6749 §3.2)
        used.append("client_secret")
    return used


def check_form(
    form: Mapping[str, str], rules: AssertionRules, authorization: str | None = None
) -> str:
    """Check the grant's form fields (and that the request authenticates the client one way
    only, ``authorization`` being its Authorization header); return the assertion.
    Raises OAuthError."""
    used = _auth_methods(form, authorization)
    if len(used) > 1:
        raise _fail(
            "several_auth_methods",
            "a request must authenticate the client one way only (RFC 6749 §2.3); this one uses "
            + " and ".join(used),
            "invalid_request",
        )
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _fail("malformed", "grant_type is required", "invalid_request")
    if grant_type not in GRANT_TYPES:
        raise _fail(
            "unsupported_grant_type",
            f"grant_type must be {GRANT_TYPE} or {TOKEN_EXCHANGE_GRANT}",
            "unsupported_grant_type",
        )
    if used and used[0] != "client_assertion":
        raise _fail(
            "unsupported_auth_method",
            f"{used[0][0].upper()}{used[0][1:]} is not accepted here: authenticate with "
            "private_key_jwt (a client assertion, RFC 7523)",
        )
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _fail(
            "malformed", f"client_assertion_type must be {ASSERTION_TYPE}", "invalid_request"
        )
    assertion = form.get("client_assertion")
    if not assertion:
        raise _fail("malformed", "client_assertion is required", "invalid_request")
    if len(assertion.encode()) > rules.max_bytes:
        raise _fail(
            "too_large",
            f"client_assertion is larger than {rules.max_bytes} bytes",
            "invalid_request",
        )
    return assertion


def is_bundle_only(client: Client) -> bool:
    """An OPA sidecar: a client whose only scope is ``bundle``. Its assertions are made by OPA's
    own code, which sends no ``kid`` and an ``exp`` ten minutes ahead; the token endpoint relaxes
    exactly those two checks for it, and for no other client."""
    return tuple(client.scopes) == (BUNDLE_SCOPE,)


def _select_keys(
    client: Client, header: Mapping[str, Any], alg: str, refused: frozenset[str]
) -> list[PublicKey]:
    """The keys the signature may verify with: one, except for a bundle-only client's assertion
    without a ``kid``, which may be signed by any of its keys for ``alg``."""
    keys = client.keys
    if header.get("kid") is None and len(keys) > 1 and is_bundle_only(client):
        fitting = [k for k in keys if k.get("kty") == KEY_TYPE_FOR_ALG[alg]]
        if not fitting:
            raise _fail("alg_key_mismatch", f"no registered key fits alg {alg}")
        return [_check_key(k, alg, refused) for k in fitting]
    return [_select_key(client, header, alg, refused)]


def _select_key(
    client: Client, header: Mapping[str, Any], alg: str, refused: frozenset[str]
) -> PublicKey:
    kid = header.get("kid")
    keys = client.keys
    if kid is None:
        if len(keys) != 1:
            raise _fail("no_kid", "the assertion has no kid and the client has several keys")
        candidates = keys
    else:
        if not isinstance(kid, str):
            raise _fail("malformed", "kid must be a string")
        candidates = [k for k in keys if k.get("kid") == kid]
        if not candidates:
            raise _fail("unknown_kid", "no registered key has that kid")
    return _check_key(candidates[0], alg, refused)


def _check_key(jwk: Mapping[str, Any], alg: str, refused: frozenset[str]) -> PublicKey:
    if jwk.get("kty") != KEY_TYPE_FOR_ALG[alg]:
        raise _fail("alg_key_mismatch", f"alg {alg} does not fit the registered key type")
    if "alg" in jwk and jwk["alg"] != alg and {jwk["alg"], alg} != {"EdDSA", "Ed25519"}:
        raise _fail("alg_key_mismatch", f"the registered key is for {jwk['alg']}, not {alg}")
    try:
        key = import_public_jwk(jwk)
    except ValueError as e:  # pragma: no cover - keys are validated on registration
        raise _fail("bad_key", "the registered key cannot be used") from e
    if key.thumbprint() in refused:
        raise _fail("demo_key", "demo keys are refused outside --demo")
    return key


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("malformed", f"{name} must be a NumericDate")
    return float(value)


def check_claims(
    claims: Mapping[str, Any], client_id: str, rules: AssertionRules, now: float
) -> int:
    """Check iss, sub, aud, exp, nbf, iat and jti; return exp (as int). Raises OAuthError."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _fail("bad_issuer", "iss and sub must both be the client id")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if rules.audience not in audiences:
        raise _fail("bad_audience", f"aud must be {rules.audience}")
    exp = _number(claims, "exp")
    if exp is None:
        raise _fail("no_exp", "exp is required")
    skew = rules.clock_skew_seconds
    if exp <= now - skew:
        raise _fail("expired", "the assertion has expired")
    if exp > now + rules.max_lifetime_seconds + skew:
        raise _fail(
            "too_long_lived",
            f"exp must be at most {rules.max_lifetime_seconds} seconds ahead (NHS England's "
            "limit too); a library's default may be longer (authlib signs for 3600 s): "
            f"see {CLIENT_GUIDE} for the setting",
        )
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + skew:
        raise _fail("not_yet_valid", "the assertion is not valid yet (nbf)")
    iat = _number(claims, "iat")
    if iat is not None:
        if iat > now + skew:
            raise _fail("not_yet_valid", "iat is in the future")
        if iat < now - rules.max_lifetime_seconds - skew:
            raise _fail("expired", "iat is too far in the past")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise _fail("no_jti", f"jti is required (a unique string of at most {MAX_JTI_LENGTH})")
    return int(exp)


def _verified_claims(assertion: str, keys: list[PublicKey], alg: str) -> dict[str, Any]:
    for key in keys:
        try:
            return dict(verify_compact(assertion, key, alg))
        except (JoseError, ValueError):
            continue
    raise _fail("bad_signature", "the assertion's signature does not verify")


def authenticate_client(
    form: Mapping[str, str],
    clients: ClientLookup,
    replay: ReplayStore,
    rules: AssertionRules,
    clock: Callable[[], float],
    authorization: str | None = None,
) -> Client:
    """Authenticate the caller of the token endpoint (``authorization``: the request's
    Authorization header, if any). Raises OAuthError on any failure."""
    assertion = check_form(form, rules, authorization)
    try:
        header, unverified = unverified_parts(assertion)
    except MalformedJose as e:
        raise _fail("malformed", f"client_assertion is not a JWT: {e}", "invalid_request") from e
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in CLIENT_ASSERTION_ALGORITHMS:
        raise _fail(
            "bad_alg", f"alg must be one of {', '.join(sorted(CLIENT_ASSERTION_ALGORITHMS))}"
        )
    if header.get("crit") is not None:
        raise _fail("malformed", "crit headers are not supported")
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or not client_id:
        raise _fail("bad_issuer", "iss must be the client id")
    form_client_id = form.get("client_id")
    if form_client_id is not None and form_client_id != client_id:
        raise _fail("bad_issuer", "client_id does not match the assertion's iss")
    client = clients.find_client(client_id)
    if client is None:
        raise _fail("unknown_client", "unknown client")
    if not client.active:
        raise _fail("suspended", "the client is suspended")
    claims = _verified_claims(
        assertion, _select_keys(client, header, alg, rules.refused_key_thumbprints), alg
    )
    if is_bundle_only(client):
        rules = replace(
            rules,
            max_lifetime_seconds=max(
                rules.max_lifetime_seconds, BUNDLE_CLIENT_MAX_LIFETIME_SECONDS
            ),
        )
    now = clock()
    exp = check_claims(claims, client.id, rules, now)
    if not replay.remember(client.id, str(claims["jti"]), exp + rules.clock_skew_seconds, int(now)):
        raise _fail("replay", "this assertion (jti) has been used already")
    return client
