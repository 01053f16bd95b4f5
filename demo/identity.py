"""The demo hospital's identity provider: a fictional smartcard sign-in with a committed key.

``broker serve --demo`` may call :func:`register_demo_identity_provider` so that the hospital's
systems can send ``requested_by.id_token`` (and must, for break-glass: see
:meth:`IdentityProviders.requires_id_token`); :func:`demo_id_token` (``broker idp demo-token``)
mints a token of a demo member of staff for the README tour.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from broker.identity.store import IdentityProvider, IdentityProviderStore
from demo.parties import HOSPITAL

DEMO_IDP_KEY_PATH = Path(__file__).resolve().parent / "idp_keys" / "r9z-smartcard.pem"
DEMO_ISSUER = "https://smartcard.r9z.nhs.example"
DEMO_KID = "r9z-smartcard-1"
ACTOR = "demo-bootstrap"


@functools.cache
def demo_idp_key() -> ECKey:
    return ECKey.import_key(DEMO_IDP_KEY_PATH.read_bytes())


def demo_jwks() -> dict[str, Any]:
    jwk = dict(demo_idp_key().as_dict(private=False))
    jwk.update(kid=DEMO_KID, use="sig", alg="ES256")
    return {"keys": [jwk]}


def register_demo_identity_provider(store: IdentityProviderStore) -> IdentityProvider:
    """Register (once) the hospital's smartcard provider with the demo key inline."""
    existing = store.get(HOSPITAL)
    if existing is not None:
        return existing
    return store.add(
        HOSPITAL, DEMO_ISSUER, actor=ACTOR, jwks=demo_jwks(), role_claim="role", required=False
    )


def demo_id_token(
    user_id: str, role: str, client_id: str = "r9z-ed-safeguarding", *, now: float | None = None
) -> str:
    """An ID token of a demo member of staff, for ``client_id``, valid for five minutes."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": DEMO_ISSUER,
        "aud": client_id,
        "sub": user_id,
        "role": role,
        "iat": issued,
        "exp": issued + 300,
    }
    return jwt.encode({"alg": "ES256", "kid": DEMO_KID}, claims, demo_idp_key())
