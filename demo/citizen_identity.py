"""The council's synthetic citizen identity provider, "Calderbridge citizen sign-in".

NHS-login-like: its ID tokens name a verified ``nhs_number`` at ``identity_proofing_level`` P9,
signed with a committed key (``demo/idp_keys/calderbridge-citizen.pem``, refused outside
``--demo``). :func:`register_demo_citizen_provider` registers it for the council (the demo
bootstrap does); :func:`demo_citizen_token` (``broker idp citizen-token``) mints a citizen's ID
token for the council's portal, to exchange at ``POST /oauth2/token``.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from broker.core.nhs_number import validate
from broker.identity.citizen_store import CitizenProvider, CitizenProviderStore
from broker.identity.citizens import CitizenRules
from demo.parties import COUNCIL

CITIZEN_KEY_PATH = Path(__file__).resolve().parent / "idp_keys" / "calderbridge-citizen.pem"
CITIZEN_ISSUER = "https://citizen-signin.calderbridge.example"
CITIZEN_PROVIDER_NAME = "Calderbridge citizen sign-in"
CITIZEN_KID = "calderbridge-citizen-1"
CITIZEN_RULES = CitizenRules(
    identifier_claim="nhs_number",
    identifier_type="nhs_number",
    assurance_claim="identity_proofing_level",
    assurance_values=frozenset({"P9"}),
)
PORTAL = "ccc-citizen-portal"
ACTOR = "demo-bootstrap"


@functools.cache
def citizen_key() -> ECKey:
    return ECKey.import_key(CITIZEN_KEY_PATH.read_bytes())


def citizen_jwks() -> dict[str, Any]:
    jwk = dict(citizen_key().as_dict(private=False))
    jwk.update(kid=CITIZEN_KID, use="sig", alg="ES256")
    return {"keys": [jwk]}


def register_demo_citizen_provider(store: CitizenProviderStore) -> CitizenProvider:
    """Register (once) the council's citizen sign-in with the demo key inline."""
    existing = store.get(COUNCIL, CITIZEN_ISSUER)
    if existing is not None:
        return existing
    return store.add(
        COUNCIL,
        CITIZEN_ISSUER,
        actor=ACTOR,
        name=CITIZEN_PROVIDER_NAME,
        rules=CITIZEN_RULES,
        jwks=citizen_jwks(),
        algorithms=("ES256",),
    )


def demo_citizen_token(
    nhs_number: str,
    client_id: str = PORTAL,
    *,
    now: float | None = None,
    proofing_level: str = "P9",
    lifetime_seconds: int = 300,
) -> str:
    """A citizen's ID token for ``client_id`` (valid five minutes): ``sub`` a stable opaque id
    (as NHS login's), the verified NHS number at ``proofing_level`` (P9 unless a test lowers it)."""
    number = validate(nhs_number)
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": CITIZEN_ISSUER,
        "aud": client_id,
        "sub": hashlib.sha256(f"{CITIZEN_ISSUER} {number}".encode()).hexdigest()[:32],
        "nhs_number": number,
        "identity_proofing_level": proofing_level,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + lifetime_seconds,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode({"alg": "ES256", "kid": CITIZEN_KID}, claims, citizen_key())
