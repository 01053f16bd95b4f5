"""Demo-like register and agreements for the policy tests (mirroring the example agreements)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from broker.policy.compiled import (
    BreakGlass,
    CompiledAgreement,
    CompiledFlow,
    Conditions,
    DatasetEntry,
    OfficeHours,
    PolicyData,
)
from demo.parties import COUNCIL, GP_HILLCREST, GP_RIVERSIDE, HOSPITAL, POLICE

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"

CHILD_PROTECTION = DatasetEntry(
    "ccc.child-protection",
    COUNCIL,
    (
        "person_id", "name.given", "name.family", "date_of_birth", "address.line1",
        "address.town", "address.postcode", "child_protection_plan.status",
        "child_protection_plan.category", "child_protection_plan.start_date",
        "child_protection_plan.end_date", "looked_after.status", "looked_after.legal_status",
        "looked_after.placement_start", "allocated_team.name", "allocated_team.phone",
        "allocated_team.email", "social_worker.name",
    ),
)  # fmt: skip
COUNCIL_TAX = DatasetEntry(
    "ccc.council-tax",
    COUNCIL,
    (
        "account.reference", "account.band", "address.uprn", "address.line1", "address.line2",
        "address.town", "address.postcode", "liable_person.name.given",
        "liable_person.name.family", "single_person_discount.status",
        "single_person_discount.start_date",
    ),
)  # fmt: skip
ELECTORAL = DatasetEntry(
    "ccc.electoral-register",
    COUNCIL,
    ("address.uprn", "address.postcode", "electors.count", "register.published_on"),
)
BENEFITS = DatasetEntry(
    "ccc.benefit-claims",
    COUNCIL,
    ("claim.reference", "claim.type", "claim.status", "claim.weekly_amount", "claim.start_date",
     "name.given", "name.family"),
)  # fmt: skip
PROOFS = DatasetEntry(
    "ccc.proof-documents",
    COUNCIL,
    ("document.type", "document.issuer", "document.verified_by", "document.verified_at",
     "document.verification_method", "document.sha256", "document.content"),
)  # fmt: skip
DISCHARGE = DatasetEntry(
    "r9z.discharge-summary",
    HOSPITAL,
    ("admission.date", "discharge.expected_date", "discharge.destination", "care_needs.mobility",
     "care_needs.summary", "diagnosis.primary"),
)  # fmt: skip
SPENDING = DatasetEntry(
    "ccc.spending-over-500",
    COUNCIL,
    ("payment.date", "payment.supplier", "payment.amount", "payment.department", "payment.purpose"),
    open=True,
)

DATASETS = (CHILD_PROTECTION, COUNCIL_TAX, ELECTORAL, BENEFITS, PROOFS, DISCHARGE, SPENDING)

SAFEGUARDING = CompiledAgreement(
    id="ISA-SAFEGUARDING-CHILDREN",
    version=2,
    digest="sha256:" + "a" * 64,
    parties=(COUNCIL, HOSPITAL, GP_RIVERSIDE, GP_HILLCREST, POLICE),
    effective_from=dt.date(2026, 1, 1),
    expires_on=dt.date(2027, 12, 31),
    flows=(
        CompiledFlow(
            id="child-protection-status",
            dataset="ccc.child-protection",
            provider=COUNCIL,
            recipients=(HOSPITAL, GP_RIVERSIDE, GP_HILLCREST, POLICE),
            purposes=("child-protection-check",),
            lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(g)", "DPA 2018 Sch 1 para 18"),
            permitted_fields=(
                "name.*",
                "date_of_birth",
                "child_protection_plan.*",
                "looked_after.status",
                "allocated_team.*",
            ),
            conditions=Conditions(
                case_reference_required=True,
                allowed_roles=("safeguarding-nurse", "ed-doctor", "gp", "mash-officer"),
                break_glass=BreakGlass(
                    fields=("looked_after.legal_status", "social_worker.name"),
                    roles=("safeguarding-nurse", "mash-officer"),
                ),
            ),
            retention_days=30,
            notify_provider=True,
            subject_access_hold_days=365,
        ),
    ),
)

PROOF_REUSE = CompiledAgreement(
    id="ISA-PROOF-REUSE",
    version=1,
    digest="sha256:" + "b" * 64,
    parties=(COUNCIL,),
    effective_from=dt.date(2026, 1, 1),
    expires_on=None,
    flows=tuple(
        CompiledFlow(
            id=f"proof-reuse-{ds.id.split('.')[1]}",
            dataset=ds.id,
            provider=COUNCIL,
            recipients=(COUNCIL,),
            purposes=("homelessness-assessment",),
            lawful_basis=("UK GDPR 6(1)(a)",),
            permitted_fields=fields,
            conditions=Conditions(consent_required=True),
            retention_days=90,
        )
        for ds, fields in (
            (PROOFS, ("document.*",)),
            (BENEFITS, ("claim.type", "claim.status", "claim.start_date")),
        )
    ),
)

SCHOOL_ADMISSIONS = CompiledAgreement(
    id="ISA-SCHOOL-ADMISSIONS",
    version=1,
    digest="sha256:" + "c" * 64,
    parties=(COUNCIL,),
    effective_from=dt.date(2026, 1, 1),
    expires_on=dt.date(2028, 8, 31),
    flows=(
        CompiledFlow(
            id="address-check",
            dataset="ccc.council-tax",
            provider=COUNCIL,
            recipients=(COUNCIL,),
            purposes=("school-admission-address-check",),
            lawful_basis=("UK GDPR 6(1)(e)",),
            permitted_fields=("address.line1", "address.postcode", "liable_person.name.family"),
            conditions=Conditions(
                verification_only=True,
                allowed_roles=("admissions-officer",),
                office_hours=OfficeHours(frozenset({1, 2, 3, 4, 5}), dt.time(8), dt.time(18)),
            ),
            retention_days=365,
            identity="system",
        ),
    ),
)

HOSPITAL_DISCHARGE = CompiledAgreement(
    id="ISA-HOSPITAL-DISCHARGE",
    version=3,
    digest="sha256:" + "d" * 64,
    parties=(HOSPITAL, COUNCIL),
    effective_from=dt.date(2026, 1, 1),
    expires_on=dt.date(2027, 3, 31),
    flows=(
        CompiledFlow(
            id="discharge-to-assess",
            dataset="r9z.discharge-summary",
            provider=HOSPITAL,
            recipients=(COUNCIL,),
            purposes=("discharge-to-assess",),
            lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(h)"),
            permitted_fields=("admission.date", "discharge.*", "care_needs.*"),
            conditions=Conditions(
                office_hours=OfficeHours(frozenset(range(1, 8)), dt.time(8), dt.time(20)),
            ),
            retention_days=180,
        ),
    ),
)

SPD_FRAUD = CompiledAgreement(
    id="ISA-SPD-FRAUD",
    version=1,
    digest="sha256:" + "e" * 64,
    parties=(COUNCIL,),
    effective_from=dt.date(2027, 1, 1),
    expires_on=None,
    flows=(
        CompiledFlow(
            id="electoral-check",
            dataset="ccc.electoral-register",
            provider=COUNCIL,
            recipients=(COUNCIL,),
            purposes=("single-person-discount-review",),
            lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 6(1)(c)"),
            permitted_fields=("address.uprn", "electors.count"),
        ),
    ),
)

REVOKED = CompiledAgreement(
    id="ISA-OLD-PILOT",
    version=1,
    digest="sha256:" + "f" * 64,
    parties=(COUNCIL, HOSPITAL),
    effective_from=dt.date(2025, 1, 1),
    expires_on=None,
    revoked=True,
    flows=(
        CompiledFlow(
            id="pilot",
            dataset="r9z.discharge-summary",
            provider=HOSPITAL,
            recipients=(COUNCIL,),
            purposes=("discharge-to-assess",),
            lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(h)"),
            permitted_fields=("admission.date",),
        ),
    ),
)

AGREEMENTS = (SAFEGUARDING, PROOF_REUSE, SCHOOL_ADMISSIONS, HOSPITAL_DISCHARGE, SPD_FRAUD, REVOKED)

DEMO_DATA = PolicyData(AGREEMENTS, DATASETS)


def policy_modules() -> dict[str, str]:
    from broker.policy.bundle import policy_modules as modules

    return modules(POLICY_DIR)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
