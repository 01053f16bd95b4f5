"""The council's line-of-business databases, filled from the synthetic population.

Each system is a set of tables plus one reporting view with one row per subject, which is what
the SQL adapter's bindings read. :func:`write_system` works on SQLite and PostgreSQL (the views
are plain SQL-92). The demo writes each system to its own SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    text,
)

from demo.sources.records import Population
from demo.sources.vocabulary import REGISTER_PUBLISHED_ON, TEAMS

SYSTEMS = (
    "childrens_social_care",
    "council_tax",
    "electoral_register",
    "housing",
    "benefits",
    "finance",
)


def _csc(md: MetaData) -> list[Table]:
    return [
        Table(
            "csc_person",
            md,
            Column("person_id", String(8), primary_key=True),
            Column("nhs_number", String(10), index=True),
            Column("given_name", String(60)),
            Column("family_name", String(60)),
            Column("date_of_birth", Date),
            Column("address_line1", String(100)),
            Column("town", String(60)),
            Column("postcode", String(10)),
        ),
        Table(
            "csc_cp_plan",
            md,
            Column("person_id", String(8), index=True),
            Column("status", String(10)),
            Column("category", String(20)),
            Column("start_date", Date),
            Column("end_date", Date),
            Column("team_id", Integer),
            Column("social_worker", String(80)),
        ),
        Table(
            "csc_looked_after",
            md,
            Column("person_id", String(8), index=True),
            Column("legal_status", String(4)),
            Column("placement_start", Date),
        ),
        Table(
            "csc_team",
            md,
            Column("team_id", Integer, primary_key=True),
            Column("name", String(80)),
            Column("phone", String(20)),
            Column("email", String(80)),
        ),
    ]


_CSC_VIEW = """
CREATE VIEW child_protection_summary AS
SELECT p.person_id, p.nhs_number, p.given_name, p.family_name, p.date_of_birth,
       p.address_line1, p.town, p.postcode,
       COALESCE(cp.status, 'none') AS cpp_status, cp.category AS cpp_category,
       cp.start_date AS cpp_start_date, cp.end_date AS cpp_end_date,
       CASE WHEN la.person_id IS NULL THEN 0 ELSE 1 END AS looked_after,
       la.legal_status AS la_legal_status, la.placement_start AS la_placement_start,
       t.name AS team_name, t.phone AS team_phone, t.email AS team_email,
       cp.social_worker AS social_worker_name
FROM csc_person p
LEFT JOIN csc_cp_plan cp ON cp.person_id = p.person_id
LEFT JOIN csc_looked_after la ON la.person_id = p.person_id
LEFT JOIN csc_team t ON t.team_id = cp.team_id
"""


def _ctax(md: MetaData) -> list[Table]:
    return [
        Table(
            "ctax_account",
            md,
            Column("reference", String(10), primary_key=True),
            Column("uprn", String(12), index=True),
            Column("band", String(1)),
            Column("address_line1", String(100)),
            Column("address_line2", String(100)),
            Column("town", String(60)),
            Column("postcode", String(10)),
            Column("liable_given", String(60)),
            Column("liable_family", String(60)),
            Column("spd", Boolean),
            Column("spd_start", Date),
        ),
    ]


def _electoral(md: MetaData) -> list[Table]:
    return [
        Table(
            "er_elector",
            md,
            Column("elector_number", String(12), primary_key=True),
            Column("uprn", String(12), index=True),
            Column("postcode", String(10)),
            Column("given_name", String(60)),
            Column("family_name", String(60)),
        ),
        Table("er_register", md, Column("published_on", Date)),
    ]


_ELECTORAL_VIEW = """
CREATE VIEW electoral_register_summary AS
SELECT e.uprn AS uprn, MIN(e.postcode) AS postcode, COUNT(*) AS electors_count,
       MAX(r.published_on) AS published_on
FROM er_elector e CROSS JOIN er_register r
GROUP BY e.uprn
"""


def _housing(md: MetaData) -> list[Table]:
    return [
        Table(
            "housing_application",
            md,
            Column("reference", String(16), primary_key=True),
            Column("person_id", String(8), index=True),
            Column("nhs_number", String(10)),
            Column("status", String(12)),
            Column("band", String(1)),
            Column("application_date", Date),
            Column("household_size", Integer),
            Column("given_name", String(60)),
            Column("family_name", String(60)),
        ),
    ]


def _benefits(md: MetaData) -> list[Table]:
    return [
        Table(
            "benefit_claim",
            md,
            Column("reference", String(16), primary_key=True),
            Column("person_id", String(8), index=True),
            Column("nhs_number", String(10)),
            Column("claim_type", String(24)),
            Column("status", String(10)),
            Column("weekly_amount", String(12)),
            Column("start_date", Date),
            Column("given_name", String(60)),
            Column("family_name", String(60)),
        ),
    ]


def _rows(system: str, pop: Population) -> dict[str, Iterable[dict[str, Any]]]:
    people = {p.person_id: p for p in pop.people}
    addresses = {a.uprn: a for a in pop.addresses}
    if system == "childrens_social_care":
        children = [p for p in pop.people if p.age() < 18]
        return {
            "csc_person": [
                {
                    "person_id": p.person_id,
                    "nhs_number": p.nhs_number,
                    "given_name": p.given,
                    "family_name": p.family,
                    "date_of_birth": p.date_of_birth,
                    "address_line1": " ".join(
                        filter(None, (addresses[p.uprn].line1, addresses[p.uprn].line2))
                    ),
                    "town": addresses[p.uprn].town,
                    "postcode": addresses[p.uprn].postcode,
                }
                for p in children
            ],
            "csc_cp_plan": [
                {
                    "person_id": c.person_id,
                    "status": c.status,
                    "category": c.category,
                    "start_date": c.start_date,
                    "end_date": c.end_date,
                    "team_id": c.team + 1,
                    "social_worker": c.social_worker,
                }
                for c in pop.plans
            ],
            "csc_looked_after": [
                {
                    "person_id": la.person_id,
                    "legal_status": la.legal_status,
                    "placement_start": la.placement_start,
                }
                for la in pop.looked_after
            ],
            "csc_team": [
                {"team_id": i + 1, "name": n, "phone": ph, "email": em}
                for i, (n, ph, em) in enumerate(TEAMS)
            ],
        }
    if system == "council_tax":
        return {
            "ctax_account": [
                {
                    "reference": a.reference,
                    "uprn": a.uprn,
                    "band": a.band,
                    "address_line1": addresses[a.uprn].line1,
                    "address_line2": addresses[a.uprn].line2,
                    "town": addresses[a.uprn].town,
                    "postcode": addresses[a.uprn].postcode,
                    "liable_given": people[a.liable_person_id].given,
                    "liable_family": people[a.liable_person_id].family,
                    "spd": a.single_person_discount,
                    "spd_start": a.discount_start,
                }
                for a in pop.council_tax
            ]
        }
    if system == "electoral_register":
        return {
            "er_elector": [
                {
                    "elector_number": f"CB{i:08d}",
                    "uprn": p.uprn,
                    "postcode": addresses[p.uprn].postcode,
                    "given_name": p.given,
                    "family_name": p.family,
                }
                for i, p in enumerate((p for p in pop.people if p.age() >= 18), start=1)
            ],
            "er_register": [{"published_on": REGISTER_PUBLISHED_ON}],
        }
    if system == "housing":
        return {
            "housing_application": [
                {
                    "reference": h.reference,
                    "person_id": h.person_id,
                    "nhs_number": people[h.person_id].nhs_number,
                    "status": h.status,
                    "band": h.band,
                    "application_date": h.application_date,
                    "household_size": h.household_size,
                    "given_name": people[h.person_id].given,
                    "family_name": people[h.person_id].family,
                }
                for h in pop.housing
            ]
        }
    if system == "benefits":
        return {
            "benefit_claim": [
                {
                    "reference": c.reference,
                    "person_id": c.person_id,
                    "nhs_number": people[c.person_id].nhs_number,
                    "claim_type": c.claim_type,
                    "status": c.status,
                    "weekly_amount": f"{c.weekly_amount:.2f}",
                    "start_date": c.start_date,
                    "given_name": people[c.person_id].given,
                    "family_name": people[c.person_id].family,
                }
                for c in pop.claims
            ]
        }
    if system == "finance":
        return {
            "spending_payment": [
                {
                    "transaction_id": t.transaction_id,
                    "payment_date": t.date,
                    "supplier": t.supplier,
                    "amount": f"{t.amount:.2f}",
                    "department": t.department,
                    "purpose": t.purpose,
                }
                for t in pop.payments
            ]
        }
    raise ValueError(f"unknown council system {system!r}")


def _finance(md: MetaData) -> list[Table]:
    return [
        Table(
            "spending_payment",
            md,
            Column("transaction_id", String(20), primary_key=True),
            Column("payment_date", Date),
            Column("supplier", String(100)),
            Column("amount", String(14)),
            Column("department", String(60)),
            Column("purpose", String(100)),
        ),
    ]


_TABLES: dict[str, Callable[[MetaData], list[Table]]] = {
    "childrens_social_care": _csc,
    "council_tax": _ctax,
    "electoral_register": _electoral,
    "housing": _housing,
    "benefits": _benefits,
    "finance": _finance,
}
_VIEWS = {"childrens_social_care": _CSC_VIEW, "electoral_register": _ELECTORAL_VIEW}


def write_system(engine: Engine, system: str, pop: Population) -> None:
    """Create ``system``'s tables (and view) in ``engine``'s database and fill them."""
    metadata = MetaData()
    tables = {t.name: t for t in _TABLES[system](metadata)}
    rows = _rows(system, pop)
    with engine.begin() as conn:
        metadata.create_all(conn)
        for name, table in tables.items():
            batch = list(rows.get(name, ()))
            if batch:
                conn.execute(table.insert(), batch)
        if system in _VIEWS:
            conn.execute(text(_VIEWS[system]))
