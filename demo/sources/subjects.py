"""The well-known demo subjects for the README tour and tests. Fictional people; test-range NHS
numbers. :func:`demo.sources.population.generate` always creates them first (a test checks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSubject:
    """A person (or household) the tour names, with what the demo sources hold about them."""

    label: str
    person_id: str
    nhs_number: str
    given: str
    family: str
    uprn: str
    postcode: str
    council_tax_account: str | None = None


#: A six-year-old on an active child protection plan (neglect); attended the ED on 2026-10-30;
#: police hold 3 concerns (2 domestic abuse notifications in 12 months). The example of the
#: README tour and docs/exchanges.md (NHS number 9990000018).
CHILD_ON_PLAN = DemoSubject(
    "child on a child protection plan",
    "P0000001",
    "9990000018",
    "Amelia",
    "Hartley",
    "100000000001",
    "CX1 4AB",
)
#: Amelia's mother, liable for council tax at 14 Weaver Street (single person discount).
CHILD_ON_PLAN_PARENT = DemoSubject(
    "parent of the child on a plan",
    "P0000002",
    "9990000026",
    "Rachel",
    "Hartley",
    "100000000001",
    "CX1 4AB",
    "CT00000001",
)
#: A four-year-old with no plan; the household of 3 Linden Close (council tax, band known).
CHILD_WITHOUT_PLAN = DemoSubject(
    "child with no plan",
    "P0000003",
    "9990000034",
    "Noah",
    "Bramwell",
    "100000000002",
    "CX2 7PQ",
)
#: The school admissions household: 3 Linden Close, CX2 7PQ, account in Owen Bramwell's name.
HOUSEHOLD = DemoSubject(
    "household with council tax",
    "P0000005",
    "9990000050",
    "Owen",
    "Bramwell",
    "100000000002",
    "CX2 7PQ",
    "CT00000002",
)
#: A looked-after child (full care order, C2) whose plan ended in 2025.
LOOKED_AFTER_CHILD = DemoSubject(
    "looked-after child",
    "P0000006",
    "9990000069",
    "Kai",
    "Penrose",
    "100000000003",
    "CX3 1DW",
)
#: A housing benefit claimant with three verified proof documents, now at Housing Options.
BENEFITS_CLAIMANT = DemoSubject(
    "benefits claimant with proof documents",
    "P0000008",
    "9990000085",
    "Dawn",
    "Ashworth",
    "100000000004",
    "CX4 2HT",
    "CT00000004",
)
#: SHA-256 of Dawn Ashworth's proof documents (identity, income, residence).
BENEFITS_CLAIMANT_DOCUMENTS = {
    "identity": "962a96d517f920d8fa0c83d867bc5f1c67c59d4031b3869be9f5edd9f67847b2",
    "income": "e283782355eb76fd430e458425b590d17cc767ac059379ad9cbaedcf3c020d62",
    "residence": "db9b8e62ecc42139e7a50451f8cbc03f804860242725b7743d16ab4f2ca8d130",
}
#: Single person discount at 8 Foundry Road while two adults are on the electoral register.
SPD_REVIEW_HOUSEHOLD = DemoSubject(
    "single person discount with two electors",
    "P0000009",
    "9990000093",
    "Gareth",
    "Lyle",
    "100000000005",
    "CX5 9LN",
    "CT00000005",
)
#: An 84-year-old inpatient (fractured neck of femur) due for discharge to assess on 2026-11-03.
DISCHARGE_PATIENT = DemoSubject(
    "inpatient ready for discharge",
    "P0000011",
    "9990000115",
    "Edna",
    "Fairclough",
    "100000000006",
    "CX6 3RB",
    "CT00000006",
)

ALL_SUBJECTS = (
    CHILD_ON_PLAN,
    CHILD_ON_PLAN_PARENT,
    CHILD_WITHOUT_PLAN,
    HOUSEHOLD,
    LOOKED_AFTER_CHILD,
    BENEFITS_CLAIMANT,
    SPD_REVIEW_HOUSEHOLD,
    DISCHARGE_PATIENT,
)
