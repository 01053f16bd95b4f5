"""Fictional organisations of the demo and the partner systems (clients) they run.

Calderbridge is a fictional UK city. Every name, code and address here is invented; NHS bodies
are identified by made-up ODS-style codes that are not issued to any real organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.core.identifiers import RoleBinding


@dataclass(frozen=True)
class DemoParty:
    id: str
    name: str
    kind: str
    ods_code: str | None = None


@dataclass(frozen=True)
class DemoClient:
    id: str
    party_id: str
    name: str
    scopes: tuple[str, ...]
    roles: tuple[RoleBinding, ...] = ()
    """The roles of its real function (the ``requester_roles`` of the example agreements), each
    narrowed to the agreement it works under: the discharge system runs no child-protection
    check."""


def _roles(agreement_id: str, *roles: str) -> tuple[RoleBinding, ...]:
    return tuple(RoleBinding(role, agreement_id) for role in roles)


COUNCIL = "calderbridge-city-council"
HOSPITAL = "R9Z"
GP_RIVERSIDE = "Y99901"
GP_HILLCREST = "Y99902"
POLICE = "west-calder-police"
HOUSING_ASSOCIATION = "northgate-housing"

DEMO_PARTIES: tuple[DemoParty, ...] = (
    DemoParty(COUNCIL, "Calderbridge City Council", "council"),
    DemoParty(HOSPITAL, "Calderbridge Hospitals NHS Foundation Trust", "nhs", "R9Z"),
    DemoParty(GP_RIVERSIDE, "Riverside Medical Practice", "nhs", "Y99901"),
    DemoParty(GP_HILLCREST, "Hillcrest Surgery", "nhs", "Y99902"),
    DemoParty(POLICE, "West Calder Police", "police"),
    DemoParty(HOUSING_ASSOCIATION, "Northgate Housing Association", "housing"),
)

SAFEGUARDING = "ISA-SAFEGUARDING-CHILDREN"
DISCHARGE = "ISA-HOSPITAL-DISCHARGE"

DEMO_CLIENTS: tuple[DemoClient, ...] = (
    # Children's Services provides child-protection data; it asks under none of the examples,
    # so it is bound to no role (`broker clients list` flags it).
    DemoClient("ccc-childrens-services", COUNCIL, "Children's Services case system", ("exchange",)),
    DemoClient(
        "ccc-housing-options",
        COUNCIL,
        "Housing Options system",
        ("exchange",),
        _roles("ISA-PROOF-REUSE", "housing-options-officer"),
    ),
    DemoClient(
        "ccc-revenues-benefits",
        COUNCIL,
        "Revenues and Benefits system",
        ("exchange", "consent"),
        _roles("ISA-SPD-FRAUD", "revenues-officer"),
    ),
    DemoClient(
        "ccc-school-admissions",
        COUNCIL,
        "School Admissions system",
        ("exchange",),
        _roles("ISA-SCHOOL-ADMISSIONS", "admissions-officer"),
    ),
    DemoClient(
        "ccc-adult-social-care",
        COUNCIL,
        "Adult Social Care system",
        ("exchange",),
        _roles(DISCHARGE, "social-worker", "discharge-coordinator"),
    ),
    DemoClient("ccc-citizen-portal", COUNCIL, "Citizen portal", ("subject-access", "consent")),
    DemoClient("ccc-governance", COUNCIL, "Council information governance team", ("governance",)),
    DemoClient(
        "r9z-ed-safeguarding",
        HOSPITAL,
        "Emergency Department safeguarding",
        ("exchange",),
        _roles(SAFEGUARDING, "safeguarding-nurse", "ed-doctor"),
    ),
    DemoClient(
        "r9z-discharge",
        HOSPITAL,
        "Discharge coordination",
        ("exchange",),
        _roles(DISCHARGE, "discharge-coordinator"),
    ),
    DemoClient("r9z-governance", HOSPITAL, "Trust Caldicott and IG office", ("governance",)),
    DemoClient(
        "y99901-gp-system",
        GP_RIVERSIDE,
        "Riverside GP clinical system",
        ("exchange",),
        _roles(SAFEGUARDING, "gp"),
    ),
    DemoClient(
        "wcp-mash", POLICE, "Police MASH desk", ("exchange",), _roles(SAFEGUARDING, "mash-officer")
    ),
    DemoClient("broker-oversight", COUNCIL, "Broker operator SIRO/DPO", ("oversight", "admin")),
    DemoClient("opa-sidecar", COUNCIL, "OPA sidecar bundle fetcher", ("bundle",)),
)
