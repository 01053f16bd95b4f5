"""Serving the bundle to OPA sidecars: ``GET /v1/policy/bundle`` with ETag and 304. Pure.

The lead's route calls :func:`bundle_reply` with the current bundle
(``PolicyHolder.current_bundle``)
and the request's ``If-None-Match`` header, and sends what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BundleReply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def etag(revision: str) -> str:
    """The strong ETag of a revision (RFC 9110 quoted form)."""
    return f'"{revision}"'


def _matches(if_none_match: str, tag: str) -> bool:
    candidates = [c.strip() for c in if_none_match.split(",")]
    # RFC 9110 13.1.2: If-None-Match uses the weak comparison.
    return any(c == "*" or c.removeprefix("W/") == tag for c in candidates)


def bundle_reply(blob: bytes, revision: str, if_none_match: str | None) -> BundleReply:
    """200 with the bundle, or 304 when the caller already holds ``revision``."""
    tag = etag(revision)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if if_none_match is not None and _matches(if_none_match, tag):
        return BundleReply(304, headers)
    headers["Content-Type"] = "application/gzip"
    return BundleReply(200, headers, blob)
