"""Fictional organisations of the demo and the partner systems (clients) they run.

Calderbridge is a fictional UK city. Every name, code and address here is invented; NHS bodies
are identified by made-up ODS-style codes that are not issued to any real organisation.
"""

from __future__ import annotations

from dataclasses import dataclass


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

DEMO_CLIENTS: tuple[DemoClient, ...] = (
    DemoClient("ccc-childrens-services", COUNCIL, "Children's Services case system", ("exchange",)),
    DemoClient("ccc-housing-options", COUNCIL, "Housing Options system", ("exchange",)),
    DemoClient(
        "ccc-revenues-benefits", COUNCIL, "Revenues and Benefits system", ("exchange", "consent")
    ),
    DemoClient("ccc-school-admissions", COUNCIL, "School Admissions system", ("exchange",)),
    DemoClient("ccc-adult-social-care", COUNCIL, "Adult Social Care system", ("exchange",)),
    DemoClient("ccc-citizen-portal", COUNCIL, "Citizen portal", ("subject-access", "consent")),
    DemoClient("ccc-governance", COUNCIL, "Council information governance team", ("governance",)),
    DemoClient("r9z-ed-safeguarding", HOSPITAL, "Emergency Department safeguarding", ("exchange",)),
    DemoClient("r9z-discharge", HOSPITAL, "Discharge coordination", ("exchange",)),
    DemoClient("r9z-governance", HOSPITAL, "Trust Caldicott and IG office", ("governance",)),
    DemoClient("y99901-gp-system", GP_RIVERSIDE, "Riverside GP clinical system", ("exchange",)),
    DemoClient("wcp-mash", POLICE, "Police MASH desk", ("exchange",)),
    DemoClient("broker-oversight", COUNCIL, "Broker operator SIRO/DPO", ("oversight", "admin")),
    DemoClient("opa-sidecar", COUNCIL, "OPA sidecar bundle fetcher", ("bundle",)),
)
