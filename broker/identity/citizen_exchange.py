"""Token exchange for citizens at ``POST /oauth2/token``: a citizen-facing system (scope
``subject-access``) exchanges the citizen's own ID token, from a citizen identity provider
registered for its party, for a citizen token naming that person.

The ID token passes every ID token check with the provider's keys and the system's audience
there, then the citizen's (:func:`~broker.identity.citizens.check_citizen_token`: the required
assurance, a valid identifier claim). It is accepted once per system (the replay store). The
first exchange records the link of the identity to the identifier (its pseudonym,
:class:`~broker.identity.citizen_store.CitizenLinkStore`). The token lives no longer than the ID
token and at most ten minutes, carries only the ``subject-access`` scope, and names the citizen
(issuer, subject, identifiers) and ``act`` the system. Refusals are RFC 8693 errors naming what
is wrong; neither token nor identifier is ever logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine

from broker.auth.jose import MalformedJose, unverified_parts
from broker.auth.registry import Client
from broker.auth.replay import ReplayStore
from broker.auth.tokens import IssuedToken, TokenCitizen, TokenService
from broker.core.errors import OAuthError
from broker.core.pseudonym import PseudonymKeyring
from broker.identity.citizen_store import (
    CitizenLinkConflict,
    CitizenLinkStore,
    CitizenProvider,
    CitizenProviderStore,
)
from broker.identity.citizens import VerifiedCitizen, check_citizen_token
from broker.identity.errors import IdTokenRejected
from broker.identity.id_tokens import NamedKey, ProviderRules, UnknownKey
from broker.identity.jwks import JwksCache, parse_jwks
from broker.identity.token_exchange import MAX_LIFETIME_SECONDS, check_form

#: The one scope a citizen token carries.
CITIZEN_SCOPE = "subject-access"
#: Prefix of an exchanged citizen ID token's entry in the replay store.
REPLAY_PREFIX = "citizen_id_token:"

T = TypeVar("T")


def _refuse(detail: str, reason: str, error: str = "invalid_request") -> OAuthError:
    return OAuthError(error=error, detail=detail, reason=reason, status_code=400)


@dataclass
class CitizenIdentity:
    """Citizen providers, links, and the checks of a citizen's ID token."""

    providers: CitizenProviderStore
    links: CitizenLinkStore
    jwks: JwksCache
    pseudonyms: PseudonymKeyring
    max_age_seconds: int = 600
    skew_seconds: int = 30
    _inline: dict[tuple[str, str, int], list[NamedKey]] = field(default_factory=dict, repr=False)

    def provider_for(self, client: Client, subject_token: str | None) -> CitizenProvider | None:
        """The citizen provider of ``client``'s party that (by its unverified ``iss``) issued
        ``subject_token``, when the client is a citizen-facing system; else None."""
        if not subject_token or CITIZEN_SCOPE not in client.scopes:
            return None
        try:
            _, claims = unverified_parts(subject_token)
        except MalformedJose:
            return None
        issuer = claims.get("iss")
        if not isinstance(issuer, str):
            return None
        return self.providers.get(client.party_id, issuer)

    def verify(
        self, provider: CitizenProvider, client_id: str, token: str, now: float
    ) -> VerifiedCitizen:
        """Raises IdTokenRejected, IdentityProviderUnavailable."""
        rules = ProviderRules(
            issuer=provider.issuer,
            audience=provider.audience_for(client_id),
            algorithms=frozenset(provider.algorithms),
        )

        def check(keys: Sequence[NamedKey]) -> VerifiedCitizen:
            return check_citizen_token(
                token,
                keys,
                rules,
                provider.rules,
                now=now,
                max_age_seconds=self.max_age_seconds,
                skew_seconds=self.skew_seconds,
            )

        return self._with_keys(provider, check)

    def _with_keys(self, provider: CitizenProvider, check: Callable[[Sequence[NamedKey]], T]) -> T:
        try:
            return check(self._keys(provider))
        except UnknownKey:
            if provider.jwks_url is None:
                raise
            return check(self.jwks.keys(provider.jwks_url, refresh=True))

    def _keys(self, provider: CitizenProvider) -> Sequence[NamedKey]:
        if provider.jwks is not None:
            cache_key = (provider.party_id, provider.issuer, provider.updated_ms)
            if cache_key not in self._inline:
                self._inline[cache_key] = parse_jwks(
                    provider.jwks, self.providers.refused_thumbprints
                )
            return self._inline[cache_key]
        assert provider.jwks_url is not None
        return self.jwks.keys(provider.jwks_url)


def exchange_citizen_token(
    form: Mapping[str, str],
    client: Client,
    scopes: list[str],
    provider: CitizenProvider,
    *,
    citizens: CitizenIdentity,
    tokens: TokenService,
    replay: ReplayStore,
    now: float,
) -> IssuedToken:
    """The citizen token for ``client`` (already authenticated). Blocking (keys, the replay
    store, the link). Raises OAuthError, and IdentityProviderUnavailable (503)."""
    if CITIZEN_SCOPE not in scopes:
        raise OAuthError(
            "invalid_scope",
            f"a citizen's token is for the {CITIZEN_SCOPE} scope: request it",
            reason="invalid_scope",
        )
    subject_token = check_form(form, tokens.issuer)
    try:
        citizen = citizens.verify(provider, client.id, subject_token, now)
    except IdTokenRejected as e:
        detail = e.problems[0].message if e.problems else str(e)
        raise _refuse(f"subject_token: {detail}", f"citizen_id_token_{e.reason}") from e
    lifetime = min(int(citizen.expires_at - now), MAX_LIFETIME_SECONDS, tokens.ttl_seconds)
    if lifetime < 1:
        raise _refuse("subject_token: the token has expired", "citizen_id_token_expired")
    if not replay.remember(
        client.id, REPLAY_PREFIX + citizen.fingerprint, int(citizen.expires_at) + 60, int(now)
    ):
        raise _refuse(
            "subject_token: this ID token has been exchanged already; send a fresh one", "replay"
        )
    keyring = citizens.pseudonyms
    try:
        citizens.links.link(
            issuer=citizen.issuer,
            subject=citizen.subject,
            identifier=keyring.pseudonymise(citizen.identifier_type, citizen.identifier),
            all_pseudonyms=[
                p.value for p in keyring.all_pseudonyms(citizen.identifier_type, citizen.identifier)
            ],
            identifier_type=citizen.identifier_type,
            verified_by=citizen.verified_by,
            assurance=citizen.assurance,
            party_id=client.party_id,
            client_id=client.id,
            now_ms=int(now * 1000),
        )
    except CitizenLinkConflict as e:
        raise _refuse(f"subject_token: {e.detail}", "citizen_link_conflict", "invalid_grant") from e
    person = TokenCitizen(
        citizen.issuer, citizen.subject, ((citizen.identifier_type, citizen.identifier),)
    )
    return tokens.issue(client, [CITIZEN_SCOPE], citizen=person, lifetime_seconds=lifetime)


def build_citizen_identity(
    engine: Engine,
    jwks: JwksCache,
    pseudonyms: PseudonymKeyring,
    *,
    refused_thumbprints: frozenset[str],
    max_age_seconds: int,
    skew_seconds: int,
) -> CitizenIdentity:
    return CitizenIdentity(
        CitizenProviderStore(engine, refused_thumbprints=refused_thumbprints),
        CitizenLinkStore(engine),
        jwks,
        pseudonyms,
        max_age_seconds=max_age_seconds,
        skew_seconds=skew_seconds,
    )
