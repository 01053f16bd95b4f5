"""RFC 8414 authorization server metadata: what a standard OAuth client library reads to find the
token endpoint, the client authentication it must use and the keys that verify its tokens.

Served at ``/.well-known/oauth-authorization-server`` (broker/api/oauth.py). The broker has no
authorization endpoint (no browser redirects: systems authenticate with ``private_key_jwt``), so
``response_types_supported``, which RFC 8414 §2 requires, is empty.
"""

from __future__ import annotations

from typing import Any

from broker.auth.assertion import GRANT_TYPES
from broker.auth.jose import CLIENT_ASSERTION_ALGORITHMS
from broker.auth.scopes import ALL_SCOPES

#: The one client authentication method (RFC 7523 §2.2); a request using more is refused.
TOKEN_ENDPOINT_AUTH_METHODS = ("private_key_jwt",)
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"


def authorization_server_metadata(issuer: str, token_url: str) -> dict[str, Any]:
    """The RFC 8414 document for a broker whose tokens' ``iss`` is ``issuer``."""
    return {
        "issuer": issuer,
        "token_endpoint": token_url,
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": sorted(CLIENT_ASSERTION_ALGORITHMS),
        "scopes_supported": sorted(ALL_SCOPES),
    }
