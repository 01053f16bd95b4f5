"""Which addresses the broker may connect to on its own initiative (pure).

The broker makes outbound requests to URLs an administrator registered (providers' webhooks,
identity providers' key sets) or configured (OPA). None of these may reach inside: a URL whose
host is, or resolves to, a loopback, private, link-local, shared (CGNAT), multicast, unspecified,
reserved or cloud metadata address is refused, IPv6 forms that embed an IPv4 address (mapped,
NAT64, 6to4, compatible) judged by the IPv4 address they carry, unless the operator allow-lists
it (``BROKER_OUTBOUND_ALLOW``; the demo allow-lists its own loopback services).

This module only judges; :mod:`broker.outbound` resolves names and connects to the addresses it
judged (at registration and at every connection), so that a name cannot resolve to one address
when checked and another when used.

Allow-list entries (:func:`parse_allow_list`), each optionally limited to one port:

- an address or network: ``127.0.0.1``, ``10.20.0.0/16``, ``::1``, ``[fd00::/8]:443``,
  ``127.0.0.1:8181``, ``10.0.0.0/8:443``;
- a host name: ``opa``, ``opa.internal:8181``, ``localhost:8181``: that name is allowed,
  whatever it resolves to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6 instance metadata
        "100.100.100.200",  # Alibaba Cloud
    )
)
"""Cloud instance metadata services: named as such in refusals (they hold credentials)."""

ADDRESS_CLASSES: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("unspecified", _nets("0.0.0.0/8", "::/128")),
    ("loopback", _nets("127.0.0.0/8", "::1/128")),
    ("link-local", _nets("169.254.0.0/16", "fe80::/10")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")),
    ("shared (CGNAT)", _nets("100.64.0.0/10")),
    ("multicast", _nets("224.0.0.0/4", "ff00::/8")),
    ("broadcast", _nets("255.255.255.255/32")),
    (
        "reserved",
        _nets(
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "100::/64",
            "2001::/23",
            "2001:db8::/32",
        ),
    ),
)
"""Refused address classes, by the name a refusal gives (checked in this order)."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.ip_network("::/96")

LOOPBACK_NAMES = ("localhost", "localhost.")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped ``::ffff:a.b.c.d``, NAT64, 6to4,
    IPv4-compatible ``::a.b.c.d``), if any: a connection to it may end at that IPv4 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_class(address: IPAddress | str) -> str | None:
    """The name of the refused class ``address`` is in (``"loopback"``, ``"private"``,
    ``"metadata"``...), or None for an ordinary public address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    inner = embedded_ipv4(ip)
    if inner is not None and (found := address_class(inner)) is not None:
        return found
    if ip in METADATA_ADDRESSES:
        return "metadata"
    for name, networks in ADDRESS_CLASSES:
        if any(ip in net for net in networks if net.version == ip.version):
            return name
    if not ip.is_global and inner is None:
        return "reserved"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (``[::1]`` brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback_name(host: str) -> bool:
    """``localhost`` and names under it (RFC 6761): loopback without asking DNS."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class AllowRule:
    """One allow-list entry: a network or a host name, on one port or any (None)."""

    network: IPNetwork | None = None
    host: str | None = None
    port: int | None = None

    def allows_name(self, host: str, port: int) -> bool:
        return (
            self.host is not None
            and self.host == host.lower().rstrip(".")
            and self.port in (None, port)
        )

    def allows_address(self, address: IPAddress, port: int) -> bool:
        return (
            self.network is not None
            and address.version == self.network.version
            and address in self.network
            and self.port in (None, port)
        )


@dataclass(frozen=True)
class AllowList:
    """What the operator lets the broker reach although its address class is refused."""

    rules: tuple[AllowRule, ...] = ()

    def allows_name(self, host: str, port: int) -> bool:
        return any(r.allows_name(host, port) for r in self.rules)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        return any(r.allows_address(address, port) for r in self.rules)


def _split_port(entry: str) -> tuple[str, int | None]:
    """``("[::1]", 5432)`` from ``[::1]:5432``; a bare IPv6 address has no port."""
    if entry.startswith("["):
        inside, closed, rest = entry[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r}: expected [address]:port")
        return inside, (int(rest[1:]) if rest else None)
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port)
    return entry, None


def parse_allow_rule(entry: str) -> AllowRule:
    """One entry (see the module docstring). Raises ValueError."""
    text = entry.strip()
    if not text:
        raise ValueError("an empty allow-list entry")
    try:
        target, port = _split_port(text)
    except ValueError as e:
        raise ValueError(f"{entry!r}: the port is not a number") from e
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{entry!r}: the port is out of range")
    try:
        return AllowRule(network=ipaddress.ip_network(target, strict=False), port=port)
    except ValueError:
        pass
    name = target.lower().rstrip(".")
    labels = name.split(".")
    if not name or any(
        not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ):
        raise ValueError(f"{entry!r} is neither an address, a network nor a host name")
    return AllowRule(host=name, port=port)


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """The allow-list of ``BROKER_OUTBOUND_ALLOW``. Raises ValueError naming a bad entry."""
    return AllowList(tuple(parse_allow_rule(e) for e in entries if e.strip()))


def refusal(host: str, port: int, addresses: Sequence[str], allow: AllowList) -> str | None:
    """Why a connection to ``host``:``port`` (resolved to ``addresses``) is refused, or None.

    Every address is checked, not only the first: a name that resolves to a public and a
    private address could be connected to either. A host name on the allow-list is allowed
    whatever it resolves to; otherwise each refused address must be allow-listed itself."""
    if allow.allows_name(host, port):
        return None
    if is_loopback_name(host) and not addresses:
        return f"{host} is a loopback name"
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        found = address_class(ip)
        if found is not None and not allow.allows_address(ip, port):
            shown = host if host.strip("[]") == str(ip) else f"{host} resolves to {ip}, which"
            return f"{shown} is a {found} address"
    return None
