"""A deterministic, seeded synthetic population of Calderbridge, a fictional UK city.

Everything is invented: names are drawn from short lists, streets and postcodes (area ``CX``, not
a real postcode area) are made up, telephone numbers come from Ofcom's drama range (01632 960xxx),
NHS numbers from the test range (999, valid Modulus 11). The same seed always gives the same
people, so tests and the README tour can name them. The first households are the well-known demo
subjects of :mod:`demo.sources.subjects`; the rest are random.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from broker.core.nhs_number import iter_test_numbers
from demo.sources.records import (
    Address,
    Admission,
    BenefitClaim,
    ChildProtectionPlan,
    CouncilTaxAccount,
    EdAttendance,
    HousingApplication,
    LookedAfter,
    Payment,
    Person,
    PoliceRecord,
    Population,
    ProofDocument,
)
from demo.sources.vocabulary import (
    CP_CATEGORIES,
    DEPARTMENTS,
    DIAGNOSES,
    DISCHARGE_DESTINATIONS,
    ED_DESTINATIONS,
    ED_REASONS,
    FAMILY,
    GIVEN_F,
    GIVEN_M,
    LA_STATUSES,
    MOBILITY,
    POLICE_CATEGORIES,
    REFERENCE_DATE,
    STREETS,
    SUPPLIERS,
)

DEFAULT_SEED = 20261129
DEFAULT_RESIDENTS = 10_000


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)
        self.pop = Population()
        self.numbers = iter_test_numbers()
        self.serial = 0

    def address(self, line1: str | None = None, postcode: str | None = None) -> Address:
        rng = self.rng
        n = len(self.pop.addresses) + 1
        flat = rng.random() < 0.2
        address = Address(
            uprn=f"{100000000000 + n}",
            line1=line1
            or (
                f"Flat {rng.randint(1, 12)}"
                if flat
                else f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
            ),
            line2=(f"{rng.randint(1, 90)} {rng.choice(STREETS)}" if flat and not line1 else None),
            postcode=postcode
            or f"CX{rng.randint(1, 9)} {rng.randint(1, 9)}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXY')}{rng.choice('ABDEFGHJLNPQRSTUWXY')}",
        )
        self.pop.addresses.append(address)
        return address

    def person(
        self,
        address: Address,
        *,
        age: int,
        gender: str | None = None,
        given: str | None = None,
        family: str | None = None,
    ) -> Person:
        rng = self.rng
        self.serial += 1
        gender = gender or rng.choice(("female", "male"))
        born = REFERENCE_DATE - timedelta(days=age * 365 + rng.randint(20, 340))
        person = Person(
            person_id=f"P{self.serial:07d}",
            nhs_number=next(self.numbers),
            given=given or rng.choice(GIVEN_F if gender == "female" else GIVEN_M),
            family=family or rng.choice(FAMILY),
            date_of_birth=born,
            gender=gender,
            uprn=address.uprn,
            gp_practice=rng.choice(("Y99901", "Y99902")),
            phone=f"01632 960{rng.randint(200, 999):03d}",
        )
        self.pop.people.append(person)
        return person

    def council_tax(self, address: Address, liable: Person, *, spd: bool | None = None) -> None:
        adults = [p for p in self.pop.people if p.uprn == address.uprn and p.age() >= 18]
        discount = (len(adults) == 1) if spd is None else spd
        n = len(self.pop.council_tax) + 1
        self.pop.council_tax.append(
            CouncilTaxAccount(
                reference=f"CT{n:08d}",
                uprn=address.uprn,
                band=self.rng.choice("AABBBCCCDDEFGH"),
                liable_person_id=liable.person_id,
                single_person_discount=discount,
                discount_start=date(2019 + n % 6, 4, 1) if discount else None,
            )
        )

    def document(self, person: Person, kind: str, issuer: str, method: str, when: datetime) -> None:
        text = (
            f"CALDERBRIDGE CITY COUNCIL - SYNTHETIC DEMO DOCUMENT\n"
            f"type: {kind}\nsubject: {person.given} {person.family} ({person.person_id})\n"
            f"issuer: {issuer}\nverified: {when.isoformat()} by {method}\n"
            "This file is fictional test data.\n"
        )
        self.pop.documents.append(
            ProofDocument(
                person_id=person.person_id,
                type=kind,
                issuer=issuer,
                verified_by="Revenues and Benefits, Calderbridge City Council",
                verified_at=when,
                method=method,
                media_type="text/plain",
                content=text.encode(),
            )
        )


def _well_known(b: _Builder) -> None:
    """The households of :mod:`demo.sources.subjects`, always first, always the same."""
    pop = b.pop
    # 1. A child on a child protection plan (neglect) who attends the ED; her mother.
    home = b.address("14 Weaver Street", "CX1 4AB")
    amelia = b.person(home, age=6, gender="female", given="Amelia", family="Hartley")
    rachel = b.person(home, age=29, gender="female", given="Rachel", family="Hartley")
    b.council_tax(home, rachel)
    pop.plans.append(
        ChildProtectionPlan(
            amelia.person_id, "active", "neglect", date(2026, 8, 14), None, 0, "Joanne Pickles"
        )
    )
    pop.ed_attendances.append(
        EdAttendance(
            amelia.nhs_number,
            "enc-ed-0001",
            date(2026, 10, 30),
            "Head injury",
            "Calderbridge Royal Infirmary ED",
            "Discharged home",
        )
    )
    pop.police.append(
        PoliceRecord(amelia.person_id, amelia.nhs_number, 3, date(2026, 10, 2), "domestic-abuse", 2)
    )
    # 2. A child with no plan, in a household the school admissions team checks.
    linden = b.address("3 Linden Close", "CX2 7PQ")
    noah = b.person(linden, age=4, gender="male", given="Noah", family="Bramwell")
    b.person(linden, age=34, gender="female", given="Megan", family="Bramwell")
    owen = b.person(linden, age=36, gender="male", given="Owen", family="Bramwell")
    b.council_tax(linden, owen)
    del noah
    # 3. A looked-after child in foster care (a plan that ended), and the foster carer.
    wharf = b.address("Flat 2", "CX3 1DW")
    kai = b.person(wharf, age=11, gender="male", given="Kai", family="Penrose")
    carer = b.person(wharf, age=52, gender="female", given="Ruth", family="Sutcliffe")
    b.council_tax(wharf, carer)
    pop.plans.append(
        ChildProtectionPlan(
            kai.person_id,
            "ended",
            "emotional-abuse",
            date(2024, 2, 1),
            date(2025, 3, 10),
            2,
            "Marcus Ede",
        )
    )
    pop.looked_after.append(LookedAfter(kai.person_id, "C2", date(2025, 3, 10)))
    # 4. A benefits claimant with verified proof documents, now applying to Housing Options.
    mill = b.address("27 Mill Lane", "CX4 2HT")
    dawn = b.person(mill, age=41, gender="female", given="Dawn", family="Ashworth")
    b.council_tax(mill, dawn)
    pop.claims.append(
        BenefitClaim(
            "HB-2025-000001",
            dawn.person_id,
            "housing-benefit",
            "awarded",
            Decimal("112.40"),
            date(2025, 1, 13),
        )
    )
    pop.housing.append(
        HousingApplication(
            "HA-2026-000001", dawn.person_id, "assessment", "B", date(2026, 10, 20), 1
        )
    )
    when = datetime(2025, 1, 9, 10, 30, tzinfo=UTC)
    b.document(dawn, "identity", "HM Passport Office", "original seen in person", when)
    b.document(
        dawn, "income", "Calder Valley Logistics Ltd", "payslips checked with employer", when
    )
    b.document(dawn, "residence", "Calderbridge Water", "utility bill, original seen", when)
    # 5. A single person discount with a second adult on the electoral register.
    foundry = b.address("8 Foundry Road", "CX5 9LN")
    gareth = b.person(foundry, age=45, gender="male", given="Gareth", family="Lyle")
    b.person(foundry, age=43, gender="female", given="Sian", family="Morrow")
    b.council_tax(foundry, gareth, spd=True)
    # 6. An older patient in hospital, ready for discharge to assess.
    tenter = b.address("5 Tenter Croft", "CX6 3RB")
    edna = b.person(tenter, age=84, gender="female", given="Edna", family="Fairclough")
    b.council_tax(tenter, edna)
    pop.admissions.append(
        Admission(
            edna.nhs_number,
            "enc-ip-0001",
            date(2026, 10, 24),
            date(2026, 11, 3),
            "home with reablement package",
            "walking frame, assistance of one",
            "Lives alone; needs help with washing and meals for 2 weeks",
            "S72.0",
            "Fracture of neck of femur",
        )
    )


def generate(seed: int = DEFAULT_SEED, residents: int = DEFAULT_RESIDENTS) -> Population:
    """The population for ``seed``: about ``residents`` people (never fewer than the well-known)."""
    b = _Builder(seed)
    _well_known(b)
    rng, pop = b.rng, b.pop
    while len(pop.people) < residents:
        home = b.address()
        family = rng.choice(FAMILY)
        adults = [
            b.person(home, age=rng.randint(19, 92), family=family)
            for _ in range(rng.choice((1, 1, 2, 2, 2, 3)))
        ]
        children = []
        if adults[0].age() < 55 and rng.random() < 0.45:
            children = [
                b.person(home, age=rng.randint(0, 17), family=family)
                for _ in range(rng.choice((1, 1, 2, 3)))
            ]
        b.council_tax(home, adults[0])
        for child in children:
            roll = rng.random()
            if roll < 0.012:
                pop.plans.append(
                    ChildProtectionPlan(
                        child.person_id,
                        "active",
                        rng.choice(CP_CATEGORIES),
                        REFERENCE_DATE - timedelta(days=rng.randint(10, 500)),
                        None,
                        rng.randrange(2),
                        f"{rng.choice(GIVEN_F + GIVEN_M)} {rng.choice(FAMILY)}",
                    )
                )
            elif roll < 0.02:
                pop.looked_after.append(
                    LookedAfter(
                        child.person_id,
                        rng.choice(LA_STATUSES),
                        REFERENCE_DATE - timedelta(days=rng.randint(30, 2000)),
                    )
                )
            if rng.random() < 0.06:
                pop.ed_attendances.append(
                    EdAttendance(
                        child.nhs_number,
                        f"enc-ed-{len(pop.ed_attendances) + 1:04d}",
                        REFERENCE_DATE - timedelta(days=rng.randint(1, 700)),
                        rng.choice(ED_REASONS),
                        "Calderbridge Royal Infirmary ED",
                        rng.choice(ED_DESTINATIONS),
                    )
                )
        for adult in adults:
            roll = rng.random()
            if roll < 0.05:
                pop.claims.append(
                    BenefitClaim(
                        f"{'HB' if roll < 0.03 else 'CTR'}-2025-{len(pop.claims) + 1:06d}",
                        adult.person_id,
                        "housing-benefit" if roll < 0.03 else "council-tax-reduction",
                        rng.choice(("awarded", "awarded", "pending", "closed")),
                        Decimal(rng.randint(1500, 16000)) / 100,
                        REFERENCE_DATE - timedelta(days=rng.randint(30, 1500)),
                    )
                )
                if rng.random() < 0.3:
                    when = datetime(2025, rng.randint(1, 12), rng.randint(1, 28), 9, 0, tzinfo=UTC)
                    b.document(adult, "identity", "HM Passport Office", "original seen", when)
                    b.document(
                        adult,
                        "income",
                        "Department for Work and Pensions",
                        "award letter checked",
                        when,
                    )
            if rng.random() < 0.025:
                pop.housing.append(
                    HousingApplication(
                        f"HA-2026-{len(pop.housing) + 1:06d}",
                        adult.person_id,
                        rng.choice(("registered", "assessment", "offered", "closed")),
                        rng.choice("ABCD"),
                        REFERENCE_DATE - timedelta(days=rng.randint(5, 900)),
                        len(adults) + len(children),
                    )
                )
            if adult.age() >= 70 and rng.random() < 0.05:
                code, text = rng.choice(DIAGNOSES)
                admitted = REFERENCE_DATE - timedelta(days=rng.randint(1, 20))
                pop.admissions.append(
                    Admission(
                        adult.nhs_number,
                        f"enc-ip-{len(pop.admissions) + 1:04d}",
                        admitted,
                        admitted + timedelta(days=rng.randint(5, 25)),
                        rng.choice(DISCHARGE_DESTINATIONS),
                        rng.choice(MOBILITY),
                        "Synthetic summary of care needs",
                        code,
                        text,
                    )
                )
        for person in adults + children:
            if rng.random() < 0.03:
                count = rng.randint(1, 6)
                category = rng.choice(POLICE_CATEGORIES)
                pop.police.append(
                    PoliceRecord(
                        person.person_id,
                        person.nhs_number,
                        count,
                        REFERENCE_DATE - timedelta(days=rng.randint(3, 900)),
                        category,
                        rng.randint(1, 4) if category == "domestic-abuse" else 0,
                    )
                )
    for n in range(1, 241):
        department, purpose = rng.choice(DEPARTMENTS)
        pop.payments.append(
            Payment(
                f"TX-2026-{n:06d}",
                date(2026, 1 + (n - 1) // 24, 1 + (n * 7) % 28),
                rng.choice(SUPPLIERS),
                Decimal(rng.randint(50_001, 9_000_000)) / 100,
                department,
                purpose,
            )
        )
    return pop
