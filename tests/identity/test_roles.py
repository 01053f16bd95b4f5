"""Roles at the requesting party: CIS2's selected role at the right organisation, directory
groups through a role map, one national issuer registered for several parties."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import Engine

from broker.auth.registry import Registry
from broker.identity.errors import IdTokenRejected
from broker.identity.roles import RoleRules, roles_from_claims
from broker.identity.service import IdentityProviders
from demo.parties import COUNCIL, GP_RIVERSIDE, HOSPITAL
from tests.identity.conftest import CLIENT, NOW, mint, public

NATIONAL = "https://cis2.national.example"
CIS2_MAP = {"S8000:G8000:R8001": "safeguarding-nurse", "R8000": "ed-doctor"}
NURSE_AT_R9Z = {
    "person_roleid": "555021935107",
    "org_code": "R9Z",
    "role_code": "S8000:G8000:R8001",
}
NURSE_AT_RXX = {
    "person_roleid": "555021935999",
    "org_code": "RXX",
    "role_code": "S8000:G8000:R8001",
}
DOCTOR_AT_R9Z = {
    "person_roleid": "555021935108",
    "org_code": "R9Z",
    "role_code": "S8000:G8000:R8000",
}


def cis2(key: ECKey, selected: str | None, *entries: dict[str, str], **more: Any) -> str:
    return mint(
        key,
        iss=NATIONAL,
        role=None,
        nhsid_nrbac_roles=list(entries),
        selected_roleid=selected,
        **more,
    )


@pytest.fixture
def national(idp: IdentityProviders, engine: Engine, key: ECKey) -> IdentityProviders:
    """The national issuer registered for the hospital and a GP practice, each with its own
    audiences and role map."""
    Registry(engine).add_party(GP_RIVERSIDE, "Riverside GP", "nhs", "Y99901", actor="test")
    jwks = {"keys": [public(key, "k1")]}
    idp.store.add(
        HOSPITAL, NATIONAL, actor="test", jwks=jwks, role_format="cis2", role_map=CIS2_MAP
    )
    idp.store.add(
        GP_RIVERSIDE,
        NATIONAL,
        actor="test",
        jwks=jwks,
        role_format="cis2",
        role_map={"R8000": "gp"},
        audiences={"y99901-gp-system": "riverside-emis-7"},
    )
    return idp


def test_the_selected_role_at_the_asking_trust_is_used(
    national: IdentityProviders, key: ECKey
) -> None:
    # A nurse with roles at two trusts and a doctor's role: only the one she selected counts.
    token = cis2(key, NURSE_AT_R9Z["person_roleid"], NURSE_AT_RXX, DOCTOR_AT_R9Z, NURSE_AT_R9Z)
    person = national.verify_subject_token(HOSPITAL, CLIENT, token, NOW)
    assert (person.issuer, person.roles) == (NATIONAL, ("safeguarding-nurse",))
    user = national.verify_id_token(HOSPITAL, CLIENT, token, NOW)
    assert user.role == "safeguarding-nurse"
    with pytest.raises(IdTokenRejected, match="'ed-doctor' is not among the token's roles"):
        national.verify_id_token(HOSPITAL, CLIENT, token, NOW, asserted_role="ed-doctor")


@pytest.mark.parametrize(
    ("selected", "entries", "match"),
    [
        pytest.param(
            NURSE_AT_RXX["person_roleid"],
            (NURSE_AT_R9Z, NURSE_AT_RXX),
            "granted at organisation 'RXX', not at 'R9Z'",
            id="role-at-another-trust",
        ),
        pytest.param(None, (NURSE_AT_R9Z,), "no selected_roleid", id="no-selected-role"),
        pytest.param("000000000000", (NURSE_AT_R9Z,), r"not \(once\) among", id="selected-unknown"),
        pytest.param(
            "1",
            ({"person_roleid": "1", "org_code": "R9Z", "role_code": "S0:G0:R9999"},),
            "'S0:G0:R9999' is not mapped",
            id="unmapped-code",
        ),
        pytest.param(
            "1", ({"person_roleid": "1", "org_code": "R9Z"},), "has no role_code", id="no-code"
        ),
    ],
)
def test_cis2_refusals_name_what_is_wrong(
    national: IdentityProviders, key: ECKey, selected: str | None, entries: Any, match: str
) -> None:
    with pytest.raises(IdTokenRejected, match=match) as caught:
        national.verify_subject_token(HOSPITAL, CLIENT, cis2(key, selected, *entries), NOW)
    assert caught.value.reason == "role"


def test_one_national_issuer_serves_two_parties_with_their_own_audiences(
    national: IdentityProviders, key: ECKey
) -> None:
    gp_role = {"person_roleid": "7", "org_code": "Y99901", "role_code": "S8000:G8000:R8000"}
    gp_token = cis2(key, "7", gp_role, aud="riverside-emis-7")
    person = national.verify_subject_token(GP_RIVERSIDE, "y99901-gp-system", gp_token, NOW)
    assert person.roles == ("gp",)
    # the same role code means ed-doctor at the hospital, by the hospital's own map
    doctor = cis2(key, DOCTOR_AT_R9Z["person_roleid"], DOCTOR_AT_R9Z)
    assert national.verify_subject_token(HOSPITAL, CLIENT, doctor, NOW).roles == ("ed-doctor",)
    # the GP's token, presented by the hospital's system: issued to another system, and a role
    # at another organisation
    with pytest.raises(IdTokenRejected, match="not issued to this system"):
        national.verify_subject_token(HOSPITAL, CLIENT, gp_token, NOW)
    with pytest.raises(IdTokenRejected, match="granted at organisation 'Y99901', not at 'R9Z'"):
        national.verify_subject_token(HOSPITAL, CLIENT, cis2(key, "7", gp_role), NOW)


def test_a_provider_registered_for_another_party_is_not_used(
    idp: IdentityProviders, key: ECKey
) -> None:
    idp.store.add(COUNCIL, NATIONAL, actor="test", jwks={"keys": [public(key, "k1")]})
    idp.store.add(
        HOSPITAL, "https://login.r9z.nhs.example", actor="test", jwks={"keys": [public(key, "k1")]}
    )
    token = mint(key, iss=NATIONAL)  # a good token of the council's provider
    assert idp.verify_subject_token(COUNCIL, CLIENT, token, NOW).issuer == NATIONAL
    with pytest.raises(IdTokenRejected, match="issuer is not the party's provider") as caught:
        idp.verify_subject_token(HOSPITAL, CLIENT, token, NOW)
    assert caught.value.reason == "issuer"


def test_a_party_with_two_providers_uses_the_tokens_issuer(
    idp: IdentityProviders, key: ECKey
) -> None:
    other = ECKey.generate_key("P-256", private=True)
    idp.store.add(HOSPITAL, NATIONAL, actor="test", jwks={"keys": [public(other, "k1")]})
    idp.store.add(
        HOSPITAL, "https://login.r9z.nhs.example", actor="test", jwks={"keys": [public(key, "k1")]}
    )
    assert idp.verify_subject_token(HOSPITAL, CLIENT, mint(key), NOW).roles == (
        "safeguarding-nurse",
    )
    assert (
        idp.verify_subject_token(HOSPITAL, CLIENT, mint(other, iss=NATIONAL), NOW).issuer
        == NATIONAL
    )
    with pytest.raises(IdTokenRejected, match="issuer is not the party's provider"):
        idp.verify_subject_token(HOSPITAL, CLIENT, mint(key, iss="https://evil.example"), NOW)
    with pytest.raises(IdTokenRejected, match="does not verify"):  # each issuer its own keys
        idp.verify_subject_token(HOSPITAL, CLIENT, mint(key, iss=NATIONAL), NOW)


def test_directory_groups_map_to_roles(idp: IdentityProviders, key: ECKey) -> None:
    idp.store.add(
        COUNCIL,
        NATIONAL,
        actor="test",
        jwks={"keys": [public(key, "k1")]},
        role_claim="groups",
        role_map={
            "CCC-Safeguarding-Social-Workers": "social-worker",
            "CCC-Housing-Options-Officers": "housing-options-officer",
        },
    )
    token = mint(
        key,
        iss=NATIONAL,
        role=None,
        groups=["All-Staff", "CCC-Safeguarding-Social-Workers", "CCC-Housing-Options-Officers"],
    )
    person = idp.verify_subject_token(COUNCIL, CLIENT, token, NOW)
    assert person.roles == ("social-worker", "housing-options-officer")
    user = idp.verify_id_token(COUNCIL, CLIENT, token, NOW, asserted_role="social-worker")
    assert user.role == "social-worker"
    with pytest.raises(IdTokenRejected, match="none of the values of the token's groups claim"):
        idp.verify_subject_token(
            COUNCIL, CLIENT, mint(key, iss=NATIONAL, groups=["All-Staff"]), NOW
        )


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        ({"role": "a"}, ("a",)),
        ({"role": ["a", "b", "a"]}, ("a", "b")),
        ({"realm": {"roles": ["x"]}}, ("x",)),
    ],
)
def test_an_empty_map_takes_the_claim_as_it_is(
    claims: dict[str, Any], roles: tuple[str, ...]
) -> None:
    claim = "realm.roles" if "realm" in claims else "role"
    assert roles_from_claims(claims, RoleRules(role_claim=claim)) == roles


def test_a_cis2_code_maps_on_its_full_code_first() -> None:
    rules = RoleRules("cis2", role_map={"S1:G1:R8000": "full", "R8000": "last"}, org_code="R9Z")
    entry = {"person_roleid": "1", "org_code": "r9z", "role_code": "S1:G1:R8000"}
    assert roles_from_claims({"selected_roleid": "1", "nhsid_nrbac_roles": [entry]}, rules) == (
        "full",
    )
    entry["role_code"] = "S2:G2:R8000"
    assert roles_from_claims({"selected_roleid": "1", "nhsid_nrbac_roles": [entry]}, rules) == (
        "last",
    )
