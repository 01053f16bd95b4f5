"""What the exchange pipeline calls about the person behind a request.

::

    if services.identity.requires_id_token(principal.party_id, request.break_glass) \\
            and id_token is None:   # the party's ``required: true``
        raise IdTokenRequired(...)
    if id_token is not None:
        user = services.identity.verify_id_token(
            principal.party_id, principal.client_id, id_token, now, asserted_role=role)
        # log and decide with user.user_id and user.role instead of the asserted ones

:meth:`IdentityProviders.check_request` does both steps in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine

from broker.auth.jose import MalformedJose, unverified_parts
from broker.core.published_keys import refused_thumbprints
from broker.identity.errors import IdTokenRejected, IdTokenRequired, NoIdentityProvider
from broker.identity.id_tokens import (
    NamedKey,
    ProviderRules,
    UnknownKey,
    VerifiedPerson,
    VerifiedUser,
    check_id_token,
    check_subject_token,
)
from broker.identity.jwks import HttpJwksFetcher, JwksCache, parse_jwks
from broker.identity.store import IdentityProvider, IdentityProviderStore
from broker.outbound import guard_for
from broker.settings import Settings

T = TypeVar("T")


@dataclass
class IdentityProviders:
    store: IdentityProviderStore
    jwks: JwksCache
    max_age_seconds: int = 600
    skew_seconds: int = 30
    _inline: dict[tuple[str, str, int], list[NamedKey]] = field(default_factory=dict, repr=False)

    def requires_id_token(self, party_id: str, break_glass: bool) -> bool:
        """True when the party requires ID tokens (``required: true``). Break-glass without one
        proceeds as an asserted person, and the policy refuses it ("break-glass needs a verified
        user", a denied exchange in the log); ``break_glass`` no longer changes the answer."""
        del break_glass  # kept in the signature: callers name it
        return any(p.required for p in self.store.for_party(party_id))

    def verify_id_token(
        self,
        party_id: str,
        client_id: str,
        id_token: str,
        now: float,
        *,
        asserted_role: str | None = None,
    ) -> VerifiedUser:
        """Check ``id_token`` against ``party_id``'s registration of the token's issuer, with
        the audience that ``client_id`` (the requesting system) has there. ``asserted_role``
        picks among several roles in the token (and must be one of them). Raises NoIdentityProvider,
        IdTokenRejected, IdentityProviderUnavailable."""
        provider = self._provider(party_id, id_token)

        def check(keys: Sequence[NamedKey]) -> VerifiedUser:
            return check_id_token(
                id_token,
                keys,
                self._rules(provider, client_id),
                now=now,
                asserted_role=asserted_role,
                max_age_seconds=self.max_age_seconds,
                skew_seconds=self.skew_seconds,
            )

        return self._with_keys(provider, check)

    def verify_subject_token(
        self, party_id: str, client_id: str, id_token: str, now: float
    ) -> VerifiedPerson:
        """An ID token sent to ``POST /oauth2/token`` for token exchange (broker/api/oauth.py):
        the checks of :meth:`verify_id_token`, keeping every role the token gives. Raises the
        same errors."""
        provider = self._provider(party_id, id_token)

        def check(keys: Sequence[NamedKey]) -> VerifiedPerson:
            return check_subject_token(
                id_token,
                keys,
                self._rules(provider, client_id),
                now=now,
                max_age_seconds=self.max_age_seconds,
                skew_seconds=self.skew_seconds,
            )

        return self._with_keys(provider, check)

    def _provider(self, party_id: str, id_token: str) -> IdentityProvider:
        """The party's registration of the token's issuer (read before the signature is checked,
        only to choose the registration: the checks then verify ``iss`` against it)."""
        providers = self.store.for_party(party_id)
        if not providers:
            raise NoIdentityProvider(party_id)
        try:
            _, claims = unverified_parts(id_token)
        except MalformedJose as e:
            raise IdTokenRejected("malformed", f"not a compact JWT ({e})") from e
        issuer = claims.get("iss")
        for provider in providers:
            if provider.issuer == issuer:
                return provider
        if len(providers) == 1:
            return providers[0]  # its checks name the wrong issuer
        raise IdTokenRejected(
            "issuer", f"the token's issuer is not the party's provider (none of {party_id}'s)"
        )

    @staticmethod
    def _rules(provider: IdentityProvider, client_id: str) -> ProviderRules:
        return ProviderRules(
            issuer=provider.issuer,
            audience=provider.audience_for(client_id),
            user_claim=provider.user_claim,
            role_claim=provider.role_claim,
            algorithms=frozenset(provider.algorithms),
            role_format=provider.role_format,
            role_map=provider.role_map,
            org_code=provider.org_code,
        )

    def _with_keys(self, provider: IdentityProvider, check: Callable[[Sequence[NamedKey]], T]) -> T:
        try:
            return check(self._keys(provider))
        except UnknownKey:
            if provider.jwks_url is None:
                raise
            return check(self.jwks.keys(provider.jwks_url, refresh=True))

    def check_request(
        self,
        party_id: str,
        client_id: str,
        id_token: str | None,
        *,
        break_glass: bool,
        now: float,
        asserted_role: str | None = None,
    ) -> VerifiedUser | None:
        """The verified user when a token was sent, None when none was sent and none is needed.
        Raises IdTokenRequired and whatever :meth:`verify_id_token` raises."""
        if id_token is None:
            if self.requires_id_token(party_id, break_glass):
                raise IdTokenRequired(
                    f"party {party_id} requires an ID token of the person making the request"
                )
            return None
        return self.verify_id_token(party_id, client_id, id_token, now, asserted_role=asserted_role)

    def _keys(self, provider: IdentityProvider) -> Sequence[NamedKey]:
        if provider.jwks is not None:
            # Parsed once per registration version (parsing costs more than a check).
            cache_key = (provider.party_id, provider.issuer, provider.updated_ms)
            if cache_key not in self._inline:
                self._inline[cache_key] = parse_jwks(provider.jwks, self.store.refused_thumbprints)
            return self._inline[cache_key]
        assert provider.jwks_url is not None
        return self.jwks.keys(provider.jwks_url)


def build_identity(settings: Settings, engine: Engine) -> IdentityProviders:
    """The service on ``engine`` with an HTTP key fetcher (timeout and cache from settings)."""
    refused = refused_thumbprints(demo=settings.demo)
    guard = guard_for(settings)
    cache = JwksCache(
        HttpJwksFetcher(settings.idp_jwks_timeout_seconds, guard),
        ttl_seconds=settings.idp_jwks_cache_seconds,
        refused_thumbprints=refused,
    )
    return IdentityProviders(
        IdentityProviderStore(engine, refused_thumbprints=refused, guard=guard),
        cache,
        max_age_seconds=settings.id_token_max_age_seconds,
        skew_seconds=settings.clock_skew_seconds,
    )
