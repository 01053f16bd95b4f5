"""The demo's identity providers: one for every party, each with a committed (published) key.

- a CIS2-like national sign-in, one issuer registered for the hospital (R9Z) and both GP
  practices (Y99901, Y99902): ``role_format: cis2``, synthetic national-RBAC-like role codes
  mapped to each party's agreement roles;
- the council's, the police's and the housing association's staff directories: a ``groups``
  claim, groups mapped to agreement roles.

``broker serve --demo`` (demo/bootstrap.py) calls :func:`register_demo_identity_providers`;
:func:`demo_id_token` (``broker idp demo-token --demo``) mints an ID token of a demo member of
staff for a named party, user, role and system. Outside ``--demo`` the keys are refused
(broker/core/published_keys.py), so these tokens are worthless there.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from broker.identity.store import IdentityProvider, IdentityProviderStore
from demo.parties import (
    COUNCIL,
    DEMO_CLIENTS,
    DEMO_PARTIES,
    GP_HILLCREST,
    GP_RIVERSIDE,
    HOSPITAL,
    HOUSING_ASSOCIATION,
    POLICE,
)

KEYS_DIR = Path(__file__).resolve().parent / "idp_keys"
ACTOR = "demo-bootstrap"

#: Synthetic national-RBAC-like codes (Job Role codes ``S..:G..:R..``) of the CIS2-like sign-in.
NURSE_CODE = "S8000:G8000:R8001"
DOCTOR_CODE = "S8000:G8000:R8000"
CLERICAL_CODE = "S8000:G8001:R8008"


@dataclass(frozen=True)
class DemoProvider:
    key_name: str
    issuer: str
    role_format: str
    role_claim: str
    role_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    """Party id -> that party's role map."""

    @property
    def kid(self) -> str:
        return f"{self.key_name}-1"


CIS2 = DemoProvider(
    "cis2-national",
    "https://cis2.nhs-identity.example/realms/Healthcare",
    "cis2",
    "nhsid_nrbac_roles",
    {
        HOSPITAL: {
            NURSE_CODE: "safeguarding-nurse",
            DOCTOR_CODE: "ed-doctor",
            CLERICAL_CODE: "discharge-coordinator",
        },
        GP_RIVERSIDE: {DOCTOR_CODE: "gp"},
        GP_HILLCREST: {DOCTOR_CODE: "gp"},
    },
)
COUNCIL_DIRECTORY = DemoProvider(
    "ccc-directory",
    "https://login.calderbridge.example",
    "claim",
    "groups",
    {
        COUNCIL: {
            "CCC-Safeguarding-Social-Workers": "social-worker",
            "CCC-Hospital-Discharge-Team": "discharge-coordinator",
            "CCC-Housing-Options-Officers": "housing-options-officer",
            "CCC-School-Admissions-Officers": "admissions-officer",
            "CCC-Revenues-Compliance-Officers": "revenues-officer",
        }
    },
)
POLICE_DIRECTORY = DemoProvider(
    "wcp-directory",
    "https://sso.westcalder.police.example",
    "claim",
    "groups",
    {POLICE: {"WCP-MASH-Officers": "mash-officer"}},
)
HOUSING_DIRECTORY = DemoProvider(
    "ngh-directory",
    "https://id.northgate-housing.example",
    "claim",
    "groups",
    {HOUSING_ASSOCIATION: {"NGH-Tenancy-Officers": "tenancy-officer"}},
)
DEMO_PROVIDERS: tuple[DemoProvider, ...] = (
    CIS2,
    COUNCIL_DIRECTORY,
    POLICE_DIRECTORY,
    HOUSING_DIRECTORY,
)

#: The hospital's provider (kept names: the national CIS2-like sign-in).
DEMO_ISSUER = CIS2.issuer
DEMO_KID = CIS2.kid


def provider_for(party_id: str) -> DemoProvider:
    for provider in DEMO_PROVIDERS:
        if party_id in provider.role_maps:
            return provider
    raise ValueError(f"no demo identity provider for party {party_id!r}")


@functools.cache
def demo_provider_key(key_name: str) -> ECKey:
    return ECKey.import_key((KEYS_DIR / f"{key_name}.pem").read_bytes())


def demo_idp_key() -> ECKey:
    """The CIS2-like sign-in's signing key."""
    return demo_provider_key(CIS2.key_name)


def demo_jwks(provider: DemoProvider = CIS2) -> dict[str, Any]:
    jwk = dict(demo_provider_key(provider.key_name).as_dict(private=False))
    jwk.update(kid=provider.kid, use="sig", alg="ES256")
    return {"keys": [jwk]}


def register_demo_identity_provider(
    store: IdentityProviderStore, party_id: str = HOSPITAL
) -> IdentityProvider:
    """Register (once) ``party_id``'s demo provider with its key inline."""
    provider = provider_for(party_id)
    existing = store.get(party_id, provider.issuer)
    if existing is not None:
        return existing
    return store.add(
        party_id,
        provider.issuer,
        actor=ACTOR,
        jwks=demo_jwks(provider),
        role_claim=provider.role_claim,
        role_format=provider.role_format,
        role_map=provider.role_maps[party_id],
        algorithms=["ES256"],
        required=False,
    )


def register_demo_identity_providers(store: IdentityProviderStore) -> list[IdentityProvider]:
    """Register (once) every demo party's provider."""
    return [register_demo_identity_provider(store, party.id) for party in DEMO_PARTIES]


def _party_of(client_id: str) -> str:
    for client in DEMO_CLIENTS:
        if client.id == client_id:
            return client.party_id
    raise ValueError(f"no demo system {client_id!r}")


def _ods_code(party_id: str) -> str:
    for party in DEMO_PARTIES:
        if party.id == party_id:
            return party.ods_code or party.id
    raise ValueError(f"no demo party {party_id!r}")


def _provider_value(provider: DemoProvider, party_id: str, role: str) -> str:
    for value, mapped in provider.role_maps[party_id].items():
        if mapped == role:
            return value
    known = ", ".join(sorted(set(provider.role_maps[party_id].values())))
    raise ValueError(f"party {party_id} gives no role {role!r} at its provider (roles: {known})")


def _role_id(user_id: str, org_code: str, code: str) -> str:
    """A stable synthetic CIS2 ``person_roleid`` (a 12-digit number)."""
    digest = hashlib.sha256(f"{user_id}|{org_code}|{code}".encode()).hexdigest()
    return str(int(digest[:15], 16))[-12:].rjust(12, "0")


def role_claims(party_id: str, user_id: str, role: str) -> dict[str, Any]:
    """The claims giving ``role`` at ``party_id``'s demo provider: CIS2's
    ``nhsid_nrbac_roles`` and ``selected_roleid``, or a directory's ``groups``."""
    provider = provider_for(party_id)
    value = _provider_value(provider, party_id, role)
    if provider.role_format != "cis2":
        return {provider.role_claim: [value]}
    org_code = _ods_code(party_id)
    role_id = _role_id(user_id, org_code, value)
    return {
        "nhsid_nrbac_roles": [
            {
                "person_orgid": role_id[:6] + "000000",
                "person_roleid": role_id,
                "org_code": org_code,
                "role_name": f'"Clinical":"Clinical Provision":"{role}"',
                "role_code": value,
            }
        ],
        "selected_roleid": role_id,
    }


def demo_id_token(
    user_id: str,
    role: str,
    client_id: str = "r9z-ed-safeguarding",
    *,
    party_id: str | None = None,
    name: str | None = None,
    now: float | None = None,
) -> str:
    """An ID token of a demo member of staff of ``party_id`` (default: the system's party)
    holding ``role``, issued to ``client_id``, valid for five minutes."""
    party = party_id or _party_of(client_id)
    provider = provider_for(party)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": client_id,
        "sub": user_id,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + 300,
        **role_claims(party, user_id, role),
    }
    if name:
        claims["name"] = name
    header = {"alg": "ES256", "kid": provider.kid, "typ": "JWT"}
    return jwt.encode(header, claims, demo_provider_key(provider.key_name))
