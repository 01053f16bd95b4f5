"""Pushing the policy and data to an OPA server that does not pull bundles, and OPA's health.

Through ``opa-python-client`` (``opa_client.opa.OpaClient``), which the design card names: it does
these administrative calls well (``PUT /v1/policies/{id}``, ``PUT /v1/data/{path}``,
``GET /health``). The decision path does not use it (:mod:`broker.policy.opa` keeps one pooled
``httpx`` client): the client library has one timeout for its whole session, retries on HTTP 500,
502 and 504 by default, and takes no timeout per request; ``docs/policy.md`` has the figures.

An OPA that was pushed to holds no bundle, so it reports no bundle revision: the broker's own
decision path refuses such an OPA (it cannot tell which revision decided). A push serves other
consumers of the same policy, or a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opa_client.opa import OpaClient

from broker.policy.bundle import DATA, PolicyBundle, load_bundle
from broker.policy.errors import BundleError

#: The id a module is pushed under: ``policies/sharing.rego`` -> ``broker/policies/sharing.rego``.
POLICY_ID_PREFIX = "broker"


@dataclass(frozen=True)
class PushResult:
    revision: str
    policies: tuple[str, ...]
    """The policy ids written (``PUT /v1/policies/{id}``)."""
    data_paths: tuple[str, ...]
    """The data documents written (``PUT /v1/data/{path}``)."""


def opa_client(url: str, *, timeout_seconds: float = 5.0, token: str | None = None) -> OpaClient:
    """An ``OpaClient`` for ``url`` (``http(s)://host:port``). No retries: a push is repeated by
    the operator, and a retried PUT of a large data document only doubles the load."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url} is not an http(s) URL of an OPA server")
    if parts.path not in ("", "/"):
        raise ValueError(f"{url}: give OPA's base URL, without a path")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return OpaClient(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "https",
        token=token,
        retries=0,
        timeout=timeout_seconds,
    )


def push(client: OpaClient, blob: bytes, keys: Mapping[str, Any] | None) -> PushResult:
    """Verify the bundle ``blob`` (signed by one of ``keys``) and push its modules and data.

    Raises :class:`BundleError` when the bundle is refused and ``OpaPushError`` when OPA refuses a
    module or a data document."""
    return push_bundle(client, load_bundle(blob, keys))


def push_bundle(client: OpaClient, bundle: PolicyBundle) -> PushResult:
    """Push a verified bundle's modules (``PUT /v1/policies/broker/{path}``) and each data root
    (``PUT /v1/data/{root}``). Raises ``OpaPushError``."""
    data = bundle.data
    policies = []
    for path, source in sorted(bundle.modules.items()):
        policy_id = f"{POLICY_ID_PREFIX}/{path}"
        try:
            client.update_policy_from_string(source, policy_id, rego_compat=False)
        except Exception as e:  # the library raises its own errors and requests' ones
            raise OpaPushError(f"OPA refused policy {policy_id}: {e}") from e
        policies.append(policy_id)
    paths = []
    for root, document in sorted(data.items()):
        if not isinstance(document, dict):
            raise BundleError(f"{DATA}: {root} is not an object")
        try:
            client.update_or_create_data(document, root)
        except Exception as e:
            raise OpaPushError(f"OPA refused data {root}: {e}") from e
        paths.append(root)
    return PushResult(bundle.revision, tuple(policies), tuple(paths))


def healthy(client: OpaClient, *, bundles: bool = False) -> bool:
    """``GET /health`` (``?bundles``: every configured bundle activated) answers 200."""
    return bool(client.check_health({"bundles": True} if bundles else None))


class OpaPushError(Exception):
    """OPA refused what was pushed, or could not be reached."""
