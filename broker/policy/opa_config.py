"""The configuration of an OPA sidecar for the bundle the broker serves. Pure (no I/O).

``broker policy opa-config`` writes it. Every value that has to agree with the broker comes from
the broker itself rather than from a hand-edited file:

- ``keys.<bundle kid>``: the algorithm (ES256), key id and public key of the key that signs the
  bundle served at ``GET /v1/policy/bundle``. OPA verifies a bundle with the algorithm configured
  here, not the one in the signature's header, so a mismatch refuses every bundle.
- ``services.<name>.credentials.oauth2``: client credentials with a JWT signed by OPA's own key
  (``private_key_jwt``), so OPA renews its own access token. As OPA's ``plugins/rest/auth.go``
  (v1.20) builds that JWT: header ``{"typ": "JWT", "alg": ...}`` with no ``kid``; claims ``iat``,
  ``exp`` ten minutes ahead, ``scope`` (the configured scopes), ``jti`` only with
  ``include_jti_claim: true``, and whatever ``additional_claims`` holds (``iss``, ``sub``,
  ``aud``); ``token_url`` must be https. The form adds ``scope`` and ``client_id``.
- ``bundles.<name>.polling``: every 1 to 2 seconds, so a changed or revoked agreement reaches OPA
  within about 2 s; a fetch with an unchanged revision costs a 304.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The OPA release the configuration is written for (the one the differential test embeds).
OPA_VERSION = "v1.20.2"
BUNDLE_RESOURCE = "/v1/policy/bundle"
SERVICE_NAME = "broker"
BUNDLE_NAME = "broker"
#: The ``keys`` entry holding OPA's own private key (for its client assertion).
CLIENT_KEY_ID = "opa-client"
MIN_DELAY_SECONDS = 1
MAX_DELAY_SECONDS = 2
#: What OPA's auth.go puts in ``exp``: the token endpoint accepts it from bundle-only clients.
OPA_ASSERTION_LIFETIME_SECONDS = 600


@dataclass(frozen=True)
class SidecarSettings:
    """What the configuration is made from."""

    broker_url: str
    """The broker's public URL (OPA fetches ``{broker_url}/v1/policy/bundle``)."""
    token_url: str
    """The broker's token endpoint: the ``aud`` of OPA's assertion; https (OPA insists)."""
    client_id: str
    """The registered client OPA authenticates as (its only scope ``bundle``)."""
    client_key_pem: str
    """OPA's own private key (PEM), registered for ``client_id``."""
    client_key_algorithm: str
    bundle_key_id: str
    bundle_key_algorithm: str
    bundle_public_key_pem: str
    decision_path: str = "/sharing/decision"


def check(settings: SidecarSettings) -> list[str]:
    """What OPA would refuse about these settings (empty when nothing)."""
    problems = []
    if not settings.token_url.startswith("https://"):
        problems.append(f"OPA requires an https token_url; {settings.token_url} is not")
    if not settings.broker_url.startswith(("https://", "http://")):
        problems.append(f"{settings.broker_url} is not an http(s) URL")
    if "PRIVATE KEY" not in settings.client_key_pem:
        problems.append("OPA's client key must be a PEM private key")
    if "PUBLIC KEY" not in settings.bundle_public_key_pem:
        problems.append("the bundle verification key must be a PEM public key")
    return problems


def opa_config(settings: SidecarSettings) -> dict[str, Any]:
    """The configuration as a mapping (``yaml.safe_dump`` or JSON it)."""
    return {
        "services": {
            SERVICE_NAME: {
                "url": settings.broker_url.rstrip("/"),
                "response_header_timeout_seconds": 10,
                "credentials": {
                    "oauth2": {
                        "grant_type": "client_credentials",
                        "token_url": settings.token_url,
                        "client_id": settings.client_id,
                        "signing_key": CLIENT_KEY_ID,
                        "scopes": ["bundle"],
                        "include_jti_claim": True,
                        "additional_claims": {
                            "iss": settings.client_id,
                            "sub": settings.client_id,
                            "aud": settings.token_url,
                        },
                    }
                },
            }
        },
        "bundles": {
            BUNDLE_NAME: {
                "service": SERVICE_NAME,
                "resource": BUNDLE_RESOURCE,
                "persist": False,
                "polling": {
                    "min_delay_seconds": MIN_DELAY_SECONDS,
                    "max_delay_seconds": MAX_DELAY_SECONDS,
                },
                "signing": {"keyid": settings.bundle_key_id},
            }
        },
        "keys": {
            settings.bundle_key_id: {
                "algorithm": settings.bundle_key_algorithm,
                "key": settings.bundle_public_key_pem,
            },
            CLIENT_KEY_ID: {
                "algorithm": settings.client_key_algorithm,
                "private_key": settings.client_key_pem,
            },
        },
        "default_decision": settings.decision_path,
        "decision_logs": {"console": False},
    }


HEADER = f"""\
# OPA sidecar configuration written by `broker policy opa-config` for OPA {OPA_VERSION}.
#
#   opa run --server --addr 127.0.0.1:8181 --config-file opa-config.yaml
#
# It holds OPA's private key (keys.{CLIENT_KEY_ID}): keep it like a secret (mode 0600, a Kubernetes
# Secret rather than a ConfigMap). The bundle key (algorithm, key id, public key) is the one the
# broker signs GET {BUNDLE_RESOURCE} with; write the file afresh after `broker secrets` changes it.
"""
