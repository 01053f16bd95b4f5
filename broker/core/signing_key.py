"""The one shape of a private signing key the broker holds. Pure (no I/O, no crypto).

Three things sign: the broker's access tokens (``broker/auth/keyring.py``), policy bundles for
OPA (``broker/policy/bundle.py``) and parties' signatures of agreements
(``broker/agreements/signing.py``). Each keeps its own rules about which algorithms it accepts and
how a key id is chosen (a dated id for token keys, the id OPA is configured with for bundles, the
RFC 7638 thumbprint for party keys), but all three hand keys around as this value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SigningKey:
    """A private key in PEM form, the key id verifiers know it by, and its JWS algorithm.

    ``algorithm`` defaults to ``RS256``, the algorithm OPA assumes for a bundle signing key.
    """

    pem: bytes
    kid: str
    algorithm: str = "RS256"

    def __repr__(self) -> str:
        # Never print the private key (logs, tracebacks, test failures).
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"
