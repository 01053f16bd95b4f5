"""The records the demo source systems hold, and :class:`Population`, all of them together."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from demo.sources.vocabulary import REFERENCE_DATE, TOWN


@dataclass(frozen=True)
class Address:
    uprn: str
    line1: str
    line2: str | None
    postcode: str
    town: str = TOWN


@dataclass(frozen=True)
class Person:
    person_id: str
    nhs_number: str
    given: str
    family: str
    date_of_birth: date
    gender: str
    uprn: str
    gp_practice: str
    phone: str
    restricted: bool = False

    def age(self, on: date = REFERENCE_DATE) -> int:
        years = on.year - self.date_of_birth.year
        return years - ((on.month, on.day) < (self.date_of_birth.month, self.date_of_birth.day))


@dataclass(frozen=True)
class ChildProtectionPlan:
    person_id: str
    status: str
    category: str
    start_date: date
    end_date: date | None
    team: int
    social_worker: str


@dataclass(frozen=True)
class LookedAfter:
    person_id: str
    legal_status: str
    placement_start: date


@dataclass(frozen=True)
class CouncilTaxAccount:
    reference: str
    uprn: str
    band: str
    liable_person_id: str
    single_person_discount: bool
    discount_start: date | None


@dataclass(frozen=True)
class HousingApplication:
    reference: str
    person_id: str
    status: str
    band: str
    application_date: date
    household_size: int


@dataclass(frozen=True)
class BenefitClaim:
    reference: str
    person_id: str
    claim_type: str
    status: str
    weekly_amount: Decimal
    start_date: date


@dataclass(frozen=True)
class ProofDocument:
    person_id: str
    type: str
    issuer: str
    verified_by: str
    verified_at: datetime
    method: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class EdAttendance:
    nhs_number: str
    encounter_id: str
    date: date
    reason: str
    site: str
    discharge_destination: str


@dataclass(frozen=True)
class Admission:
    nhs_number: str
    encounter_id: str
    admitted: date
    expected_discharge: date
    destination: str
    mobility: str
    summary: str
    diagnosis_code: str
    diagnosis: str


@dataclass(frozen=True)
class PoliceRecord:
    person_id: str
    nhs_number: str
    concerns: int
    latest_date: date | None
    latest_category: str | None
    domestic_abuse_last_12_months: int


@dataclass(frozen=True)
class Payment:
    """A council payment over 500 pounds (published as open data; no personal data)."""

    transaction_id: str
    date: date
    supplier: str
    amount: Decimal
    department: str
    purpose: str


@dataclass
class Population:
    """Everything the demo source systems hold."""

    addresses: list[Address] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    plans: list[ChildProtectionPlan] = field(default_factory=list)
    looked_after: list[LookedAfter] = field(default_factory=list)
    council_tax: list[CouncilTaxAccount] = field(default_factory=list)
    housing: list[HousingApplication] = field(default_factory=list)
    claims: list[BenefitClaim] = field(default_factory=list)
    documents: list[ProofDocument] = field(default_factory=list)
    ed_attendances: list[EdAttendance] = field(default_factory=list)
    admissions: list[Admission] = field(default_factory=list)
    police: list[PoliceRecord] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)

    def person(self, person_id: str) -> Person:
        return next(p for p in self.people if p.person_id == person_id)

    def address(self, uprn: str) -> Address:
        return next(a for a in self.addresses if a.uprn == uprn)
