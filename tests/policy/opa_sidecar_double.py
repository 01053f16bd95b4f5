"""A TEST DOUBLE of an OPA sidecar fetching the broker's bundle. It is not OPA.

It reads the configuration ``broker policy opa-config`` writes and does what OPA v1.20 does with
it (``v1/plugins/rest/auth.go``, ``oauth2ClientCredentialsAuthPlugin``):

- refuses a ``token_url`` that is not https;
- signs a client assertion with ``keys.<signing_key>.private_key`` and its configured algorithm:
  protected header exactly ``{"typ":"JWT","alg":<alg>}`` (no ``kid``), claims ``iat``, ``exp``
  ten minutes ahead, then ``additional_claims`` copied over them, ``scope`` (the scopes joined by
  spaces), and ``jti`` (a UUID) only with ``include_jti_claim``;
- posts the form ``client_assertion``, ``client_assertion_type``, ``client_id`` (when set),
  ``grant_type=client_credentials`` and ``scope``, url-encoded with the keys sorted (Go's
  ``url.Values.Encode``), and expects ``token_type`` bearer;
- fetches ``service url + bundle resource`` with ``Authorization: Bearer`` and ``If-None-Match``,
  and verifies the bundle with the configured ``keys.<signing.keyid>`` and its algorithm.

The broker under test answers plain HTTP on loopback; ``tls_terminated`` maps the https URLs the
configuration names to it, as a TLS terminator in front of the broker would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from broker.auth.assertion import ASSERTION_TYPE
from broker.policy.bundle import PolicyBundle, VerificationKey, load_bundle

ASSERTION_LIFETIME_SECONDS = 600  # auth.go: now.Add(10 * time.Minute)


def tls_terminated(url: str) -> str:
    return url.replace("https://", "http://", 1)


class OpaSidecarDouble:
    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        service: str = "broker",
        bundle: str = "broker",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.oauth2 = config["services"][service]["credentials"]["oauth2"]
        self.service_url = config["services"][service]["url"]
        self.bundle_config = config["bundles"][bundle]
        self.clock = clock
        if not str(self.oauth2["token_url"]).startswith("https://"):
            raise ValueError("token_url required to use https scheme")  # auth.go's refusal
        self.http = httpx.Client(timeout=10.0)
        self.token: str | None = None
        self.last_claims: dict[str, Any] = {}
        self.last_header: dict[str, Any] = {}
        self.last_form: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def assertion(self) -> str:
        key_config = self.config["keys"][self.oauth2["signing_key"]]
        alg = key_config["algorithm"]
        key: RSAKey | ECKey | OKPKey
        pem = key_config["private_key"].encode()
        for cls in (ECKey, RSAKey, OKPKey):
            try:
                key = cls.import_key(pem)
                break
            except Exception:  # noqa: S112 - try the next key type
                continue
        now = int(self.clock())
        claims: dict[str, Any] = {"iat": now, "exp": now + ASSERTION_LIFETIME_SECONDS}
        claims.update(self.oauth2.get("additional_claims") or {})
        if self.oauth2.get("scopes"):
            claims["scope"] = " ".join(self.oauth2["scopes"])
        if self.oauth2.get("include_jti_claim"):
            claims["jti"] = str(uuid.uuid4())
        header = {"typ": "JWT", "alg": alg}
        self.last_header, self.last_claims = header, claims
        return jwt.encode(header, claims, key, algorithms=[alg])

    def request_token(self) -> httpx.Response:
        form: dict[str, str] = {}
        if self.oauth2.get("scopes"):
            form["scope"] = " ".join(self.oauth2["scopes"])
        form["grant_type"] = "client_credentials"
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = self.assertion()
        if self.oauth2.get("client_id"):
            form["client_id"] = self.oauth2["client_id"]
        self.last_form = form
        body = urlencode(sorted(form.items()))
        response = self.http.post(
            tls_terminated(self.oauth2["token_url"]),
            content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status_code == 200:
            answer = response.json()
            assert str(answer["token_type"]).lower() == "bearer"
            self.token = str(answer["access_token"]).strip()
        return response

    def fetch(self, etag: str | None = None) -> httpx.Response:
        if self.token is None:
            response = self.request_token()
            assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {self.token}"}
        if etag:
            headers["If-None-Match"] = etag
        url = self.service_url.rstrip("/") + self.bundle_config["resource"]
        return self.http.get(tls_terminated(url), headers=headers)

    def activate(self, blob: bytes) -> PolicyBundle:
        """Verify as OPA does: the key named by ``signing.keyid``, with its configured algorithm."""
        kid = self.bundle_config["signing"]["keyid"]
        key = self.config["keys"][kid]
        return load_bundle(blob, {kid: VerificationKey(key["key"].encode(), key["algorithm"])})


def decoded_header(assertion: str) -> dict[str, Any]:
    import base64

    part = assertion.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
