"""Token exchange (RFC 8693) at ``POST /oauth2/token``: a partner system, authenticated by its
client assertion, exchanges its user's ID token for a user-restricted access token.

The ID token is checked by the identity provider registered for the system's own party
(:meth:`~broker.identity.service.IdentityProviders.verify_subject_token`): issued to this system,
recent, signed by a known key. It is accepted once per system (its SHA-256 in the replay store
of broker/auth/replay.py until it expires). The access token names the user (issuer, subject,
display name), the roles the provider gave, and ``act`` the system; it lives no longer than the
ID token, at most ten minutes and at most the configured token lifetime. Every refusal is an
:class:`~broker.core.errors.OAuthError` with the RFC's code and what is wrong; nothing is logged
of either token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from broker.auth.jose import MalformedJose, unverified_parts
from broker.auth.registry import Client
from broker.auth.replay import ReplayStore
from broker.auth.tokens import IssuedToken, TokenService, TokenUser
from broker.core.errors import OAuthError
from broker.identity.errors import IdTokenRejected, NoIdentityProvider
from broker.identity.id_tokens import VerifiedPerson
from broker.identity.service import IdentityProviders

ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
MAX_LIFETIME_SECONDS = 600
MAX_SUBJECT_TOKEN_BYTES = 8192
#: Prefix of an exchanged ID token's entry in the replay store (apart from assertion jtis).
REPLAY_PREFIX = "id_token:"


@dataclass(frozen=True)
class Exchanged:
    issued: IssuedToken
    person: VerifiedPerson


def _refuse(detail: str, reason: str, error: str = "invalid_request") -> OAuthError:
    return OAuthError(error=error, detail=detail, reason=reason, status_code=400)


def _check_form(form: Mapping[str, str], audience: str) -> str:
    """The subject token, once the exchange's own parameters are right."""
    subject_token = form.get("subject_token")
    if not subject_token:
        raise _refuse("subject_token is required (the user's ID token)", "malformed")
    if form.get("subject_token_type") != ID_TOKEN_TYPE:
        raise _refuse(f"subject_token_type must be {ID_TOKEN_TYPE}", "subject_token_type")
    if len(subject_token.encode()) > MAX_SUBJECT_TOKEN_BYTES:
        raise _refuse(f"subject_token is larger than {MAX_SUBJECT_TOKEN_BYTES} bytes", "too_large")
    if form.get("actor_token") or form.get("actor_token_type"):
        raise _refuse(
            "actor_token is not accepted: the client assertion names the acting system",
            "actor_token",
        )
    requested = form.get("requested_token_type")
    if requested is not None and requested != ACCESS_TOKEN_TYPE:
        raise _refuse(f"requested_token_type must be {ACCESS_TOKEN_TYPE}", "requested_token_type")
    for name in ("audience", "resource"):
        value = form.get(name)
        if value is not None and value != audience:
            raise _refuse(
                f"{name} must be {audience} (this broker)", "invalid_target", "invalid_target"
            )
    try:
        header, claims = unverified_parts(subject_token)
    except MalformedJose as e:
        raise _refuse(f"subject_token is not a compact JWT ({e})", "malformed") from e
    if header.get("typ") == "at+jwt" or claims.get("iss") == audience:
        raise _refuse(
            "subject_token is an access token of this broker: an ID token is needed",
            "access_token_as_subject",
        )
    return subject_token


def exchange_id_token(
    form: Mapping[str, str],
    client: Client,
    scopes: list[str],
    *,
    identity: IdentityProviders,
    tokens: TokenService,
    replay: ReplayStore,
    now: float,
    suspended: Callable[[str, str, str], bool] = lambda party_id, issuer, subject: False,
) -> Exchanged:
    """The user-restricted token for ``client`` (already authenticated). Blocking (the provider
    registry, the replay store). Raises OAuthError, and IdentityProviderUnavailable (503)."""
    subject_token = _check_form(form, tokens.issuer)
    try:
        person = identity.verify_subject_token(client.party_id, client.id, subject_token, now)
    except NoIdentityProvider as e:
        raise _refuse(
            f"party {client.party_id} has registered no identity provider",
            "no_provider",
            "unauthorized_client",
        ) from e
    except IdTokenRejected as e:
        detail = e.problems[0].message if e.problems else str(e)
        raise _refuse(f"subject_token: {detail}", f"id_token_{e.reason}") from e
    if suspended(client.party_id, person.issuer, person.user_id):  # by its party's governance
        detail = f"user {person.user_id} of party {client.party_id} is suspended"
        raise _refuse(detail, "user_suspended", "invalid_grant")
    lifetime = min(int(person.expires_at - now), MAX_LIFETIME_SECONDS, tokens.ttl_seconds)
    if lifetime < 1:
        raise _refuse("subject_token: the token has expired", "id_token_expired")
    if not replay.remember(
        client.id, REPLAY_PREFIX + person.fingerprint, int(person.expires_at) + 60, int(now)
    ):
        raise _refuse(
            "subject_token: this ID token has been exchanged already; send a fresh one", "replay"
        )
    user = TokenUser(person.issuer, person.user_id, person.roles, person.name)
    return Exchanged(tokens.issue(client, scopes, user=user, lifetime_seconds=lifetime), person)


#: The exchange's own parameters checked, for other kinds of subject token (citizen_exchange.py).
check_form = _check_form
