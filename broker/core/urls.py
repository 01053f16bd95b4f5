"""Checking URLs an administrator registers (webhooks, identity providers' key sets): pure."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from broker.core.errors import FieldProblem, InvalidInput

_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_admin_url(url: str, location: str = "url") -> str:
    """``url`` if acceptable: https, or plain http to a loopback host (demo, tests); no
    credentials, no fragment. Raises InvalidInput naming ``location``."""
    problem = None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is None or not host or parts.scheme not in ("https", "http"):
        problem = "must be an absolute http(s) URL"
    elif parts.username or parts.password:
        problem = "must not carry credentials"
    elif parts.fragment:
        problem = "must not have a fragment"
    elif parts.scheme == "http" and not is_loopback(host):
        problem = "must be https (plain http only to a loopback address)"
    if problem:
        raise InvalidInput(f"{location} refused", [FieldProblem(location, problem)])
    return url
