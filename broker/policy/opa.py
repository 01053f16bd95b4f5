"""The OPA engine: decisions from an OPA server through its REST Data API.

``POST {base}/v1/data/sharing/decision?provenance`` with ``{"input": ...}``; OPA answers
``{"result": ..., "provenance": {"bundles": {name: {"revision": ...}}}}`` (no ``result`` when the
rule is undefined). The revision a decision records is the one OPA reports. Connections are pooled
(one ``httpx.Client``) and made only to addresses the outbound rule allows (:mod:`broker.outbound`:
an OPA sidecar on loopback or a private network must be in ``BROKER_OUTBOUND_ALLOW``); redirects
are not followed. Every failure (timeout, connection error, non-200, undefined or malformed
result) is a deny with ``policy engine unavailable``: fail closed.

The ``httpx`` client is used rather than ``opa-python-client``: it gives pooling and timeouts
directly, and the broker already depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from broker.outbound import OutboundGuard
from broker.policy.engine import Decision, decision_from_result, unavailable

DECISION_PATH = "/v1/data/sharing/decision"


class OpaEngine:
    """Asks an OPA server. Thread-safe (httpx clients are)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 0.5,
        bundle_name: str | None = None,
        max_connections: int = 20,
        transport: httpx.BaseTransport | None = None,
        guard: OutboundGuard | None = None,
    ) -> None:
        """``bundle_name``: which bundle's revision to record (default: the only or first one).
        ``guard``: the outbound address rule (default: nothing inside allowed), unless a test
        passes its own ``transport``."""
        self._bundle_name = bundle_name
        self._revision = "unknown"
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            transport = (guard or OutboundGuard()).httpx_transport(limits)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds),
            limits=limits,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def revision(self) -> str:
        """The revision OPA reported on the latest successful decision."""
        return self._revision

    def close(self) -> None:
        self._client.close()

    def healthy(self) -> bool:
        """``GET /health`` answers 200."""
        try:
            return self._client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def reported_revision(self) -> str | None:
        """Ask OPA which bundle revision it holds now (a decision on an empty input, for its
        provenance only); records and returns it, or None when OPA does not say."""
        try:
            response = self._client.post(
                DECISION_PATH, params={"provenance": "true"}, json={"input": {}}
            )
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        revision = self._reported_revision(body) if isinstance(body, dict) else None
        if revision is not None:
            self._revision = revision
        return revision

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        try:
            response = self._client.post(
                DECISION_PATH, params={"provenance": "true"}, json={"input": dict(policy_input)}
            )
        except httpx.TimeoutException:
            return unavailable(self._revision, "OPA did not answer in time")
        except httpx.HTTPError as e:
            return unavailable(self._revision, f"OPA unreachable: {type(e).__name__}")
        if response.status_code != 200:
            return unavailable(self._revision, f"OPA answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            return unavailable(self._revision, "OPA answered with invalid JSON")
        if not isinstance(body, dict):
            return unavailable(self._revision, "OPA answered with invalid JSON")
        revision = self._reported_revision(body)
        if revision is None:
            return unavailable(self._revision, "OPA reported no bundle revision")
        self._revision = revision
        if "result" not in body:
            return unavailable(revision, "data.sharing.decision is undefined on OPA")
        return decision_from_result(body["result"], revision, policy_input)

    def _reported_revision(self, body: Mapping[str, Any]) -> str | None:
        provenance = body.get("provenance")
        bundles = provenance.get("bundles") if isinstance(provenance, dict) else None
        if not isinstance(bundles, dict) or not bundles:
            return None
        name = self._bundle_name or sorted(bundles)[0]
        entry = bundles.get(name)
        revision = entry.get("revision") if isinstance(entry, dict) else None
        return revision if isinstance(revision, str) and revision else None
