"""Identity providers' key sets: fetched over HTTP with a timeout, cached, refreshed on demand.

:class:`JwksCache` keeps each URL's keys for ``ttl_seconds``. A token naming a kid the cache does
not know triggers one early refresh (a provider rotated its keys), at most once per
``min_refresh_seconds`` per URL, so forged kids cannot make the broker hammer a provider. When a
fetch fails the last keys fetched are used for up to ``stale_max_seconds``; with none, the check
fails closed (:class:`IdentityProviderUnavailable`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from broker.auth.jose import import_public_jwk
from broker.identity.errors import IdentityProviderUnavailable
from broker.identity.id_tokens import NamedKey
from broker.outbound import OutboundGuard

log = structlog.get_logger("broker.identity")

MAX_JWKS_BYTES = 256 * 1024


class JwksFetcher(Protocol):
    def fetch(self, url: str) -> Mapping[str, Any]:
        """The JSON key set at ``url``; raises any exception on failure."""
        ...


class HttpJwksFetcher:
    """Fetches with httpx: a timeout, no redirects, a size limit, and only from addresses the
    outbound rule allows (``guard``: resolved, every address checked, the checked one connected
    to; the default allows nothing inside)."""

    def __init__(self, timeout_seconds: float, guard: OutboundGuard | None = None) -> None:
        self._timeout = timeout_seconds
        self._guard = guard or OutboundGuard()
        self._client: httpx.Client | None = None  # made on first use: most parties have none

    def fetch(self, url: str) -> Mapping[str, Any]:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self._timeout,
                follow_redirects=False,
                transport=self._guard.httpx_transport(),
                trust_env=False,
            )
        response = self._client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("the key set is too large")
        value = response.json()
        if not isinstance(value, dict):
            raise ValueError("the key set is not a JSON object")
        return value

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def parse_jwks(
    jwks: Mapping[str, Any], refused_thumbprints: frozenset[str] = frozenset()
) -> list[NamedKey]:
    """The usable public signing keys of a key set. Keys that are not for signatures
    (``use: enc``), private, symmetric, malformed or refused (the committed demo key, outside
    ``--demo``) are skipped, not trusted."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("a key set has a 'keys' list")
    found: list[NamedKey] = []
    for data in keys:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        try:
            key = import_public_jwk(data)
        except ValueError:
            continue
        if refused_thumbprints and key.thumbprint() in refused_thumbprints:
            continue
        kid = data.get("kid")
        found.append(NamedKey(kid if isinstance(kid, str) else None, key))
    return found


@dataclass
class _Entry:
    keys: list[NamedKey]
    fetched_at: float
    tried_at: float


class JwksCache:
    """Thread-safe cache of key sets by URL."""

    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        stale_max_seconds: float = 86400.0,
        refused_thumbprints: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._refused = refused_thumbprints
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._stale_max = stale_max_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def keys(self, url: str, *, refresh: bool = False) -> Sequence[NamedKey]:
        """The keys at ``url``: cached, or fetched when missing, expired, or ``refresh`` is asked
        (and allowed). Raises :class:`IdentityProviderUnavailable`."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(url)
            fresh = entry is not None and now - entry.fetched_at < self._ttl
            may_refresh = entry is None or now - entry.tried_at >= self._min_refresh
            usable = entry is not None and now - entry.fetched_at < self._stale_max
            if entry is not None and usable and ((fresh and not refresh) or not may_refresh):
                return entry.keys
            try:
                keys = parse_jwks(self._fetcher.fetch(url), self._refused)
            except Exception as e:  # any failure of the provider: keep the last good keys
                if entry is not None:
                    entry.tried_at = now
                    if now - entry.fetched_at < self._stale_max:
                        log.warning("jwks refresh failed; using cached keys", url=url, error=str(e))
                        return entry.keys
                raise IdentityProviderUnavailable(
                    f"the identity provider's keys could not be fetched: {type(e).__name__}"
                ) from e
            self._entries[url] = _Entry(keys, now, now)
            return keys
