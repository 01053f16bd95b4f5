"""Outbound connections that cannot reach inside: names resolved, every address checked, the
checked address connected to.

The rule (which address classes are refused, what the operator's ``BROKER_OUTBOUND_ALLOW``
lets through) is :mod:`broker.core.outbound`; this module applies it at the edge:

- at registration (``broker webhooks add``, ``broker idp add``, the admin API):
  :meth:`OutboundGuard.check_url` refuses a URL whose host is, or resolves to, a refused
  address (422 naming the address class). A name that does not resolve now is accepted: it is
  checked again at every connection;
- at every connection: the webhook worker's aiohttp session resolves through
  :meth:`OutboundGuard.aiohttp_resolver` (and checks a literal address itself, since aiohttp does
  not resolve those), identity providers' key sets and OPA go through
  :meth:`OutboundGuard.httpx_transport`, whose network backend resolves, checks every address
  and connects to a checked one (TLS still verifies the certificate for the URL's host name).
  So a name that resolved to a public address at registration and to a private one later (DNS
  rebinding) is refused when used;
- redirects are never followed by these clients (a 3xx is a failure): a redirect cannot lead
  to an address that was not checked.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.core.errors import FieldProblem, InvalidInput
from broker.core.outbound import (
    AllowList,
    is_loopback_name,
    literal_address,
    parse_allow_list,
    refusal,
)
from broker.settings import Settings

ALLOW_SETTING = "BROKER_OUTBOUND_ALLOW"

Resolve = Callable[[str, int], Sequence[str]]
"""``(host, port)`` -> the addresses to connect to. Raises OSError when the name does not
resolve."""


class OutboundRefused(OSError):
    """A connection the address rule refuses (an OSError, so HTTP clients report a failed
    connection)."""


def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (``getaddrinfo``), in its order."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class OutboundGuard:
    """The address rule with the operator's allow-list and a resolver (the system's by
    default; tests pass a stub). The default guard allows nothing inside."""

    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolve = system_resolve

    @classmethod
    def from_entries(
        cls, entries: Iterable[str], resolve: Resolve = system_resolve
    ) -> OutboundGuard:
        return cls(parse_allow_list(entries), resolve)

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host``:``port``. Raises OutboundRefused
        (refused, or the name does not resolve)."""
        literal = literal_address(host)
        if literal is not None:
            found = [str(literal)]
        elif is_loopback_name(host):  # RFC 6761: loopback, whatever a resolver says
            found = ["127.0.0.1"]
        else:
            try:
                found = list(self.resolve(host, port))
            except OSError as e:
                raise OutboundRefused(f"{host} does not resolve: {e}") from e
            if not found:
                raise OutboundRefused(f"{host} does not resolve")
        reason = refusal(host, port, found, self.allow)
        if reason is not None:
            raise OutboundRefused(f"{reason}, refused (allow it with {ALLOW_SETTING})")
        return found

    def check_url(self, url: str, location: str = "url") -> str:
        """``url`` if its host is not, and does not resolve to, a refused address. A name that
        does not resolve now is accepted (checked at every connection). Raises InvalidInput
        naming ``location`` and the address class."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or _default_port(parts.scheme)
        except ValueError as e:
            raise InvalidInput(
                f"{location} refused", [FieldProblem(location, "has an invalid port")]
            ) from e
        try:
            self.addresses(host, port)
        except OutboundRefused as e:
            if literal_address(host) is None and str(e).startswith(f"{host} does not resolve"):
                return url
            raise InvalidInput(f"{location} refused", [FieldProblem(location, str(e))]) from e
        return url

    def check_literal(self, url: str) -> None:
        """Check a URL whose host is an address literal (aiohttp connects to those without
        asking its resolver). Names are left to :meth:`aiohttp_resolver`. Raises
        OutboundRefused."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if literal_address(host) is not None:
            self.addresses(host, parts.port or _default_port(parts.scheme))

    def aiohttp_resolver(self) -> AbstractResolver:
        """A resolver for ``aiohttp.TCPConnector(resolver=...)`` that refuses as the rule says."""
        return _CheckedResolver(self)

    def httpx_transport(self, limits: httpx.Limits | None = None) -> httpx.HTTPTransport:
        """An httpx transport that connects only to checked addresses (no proxy from the
        environment)."""
        transport = httpx.HTTPTransport(
            limits=limits or httpx.Limits(max_connections=20, max_keepalive_connections=20),
            trust_env=False,
        )
        pool = transport._pool
        assert isinstance(pool, httpcore.ConnectionPool)
        # httpcore hands its pool's network backend to every connection it opens.
        pool._network_backend = _CheckedBackend(self)
        return transport


def guard_for(settings: Settings) -> OutboundGuard:
    """The guard with the operator's ``BROKER_OUTBOUND_ALLOW``."""
    return OutboundGuard.from_entries(settings.outbound_allow)


class _CheckedResolver(AbstractResolver):
    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # The guard resolves and checks (in a thread: getaddrinfo blocks); aiohttp then
        # connects to exactly these addresses.
        addresses = await asyncio.to_thread(self._guard.addresses, host, port)
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


class _CheckedBackend(httpcore.SyncBackend):
    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.addresses(host, port)
        except OutboundRefused as e:
            raise httpcore.ConnectError(str(e)) from e
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    address, port, timeout, local_address, list(socket_options or [])
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last
