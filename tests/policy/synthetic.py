"""Many synthetic agreements, for scale tests and the benchmark (fictional parties and ids)."""

from __future__ import annotations

import datetime as dt

from broker.policy.compiled import CompiledAgreement, CompiledFlow, Conditions, PolicyData
from demo.parties import COUNCIL, HOSPITAL
from tests.policy.fixtures import AGREEMENTS, DATASETS


def synthetic_agreement(i: int) -> CompiledAgreement:
    partner = f"partner-{i:05d}"
    return CompiledAgreement(
        id=f"ISA-SYNTH-{i:05d}",
        version=1,
        digest=f"sha256:{i:064x}",
        parties=(COUNCIL, partner, HOSPITAL),
        effective_from=dt.date(2026, 1, 1),
        expires_on=dt.date(2028, 12, 31),
        flows=(
            CompiledFlow(
                id="cp",
                dataset="ccc.child-protection",
                provider=COUNCIL,
                recipients=(partner, HOSPITAL),
                purposes=(f"purpose-{i % 7}", "child-protection-check"),
                lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(g)"),
                permitted_fields=("name.*", "child_protection_plan.*"),
                conditions=Conditions(case_reference_required=True, allowed_roles=("caseworker",)),
                retention_days=30,
                notify_provider=True,
            ),
            CompiledFlow(
                id="tax",
                dataset="ccc.council-tax",
                provider=COUNCIL,
                recipients=(partner,),
                purposes=(f"purpose-{i % 7}",),
                lawful_basis=("UK GDPR 6(1)(e)",),
                permitted_fields=("address.*",),
            ),
        ),
    )


def synthetic_data(n: int) -> PolicyData:
    """The demo agreements plus ``n`` synthetic ones (so ``n`` + 6 in force)."""
    return PolicyData(AGREEMENTS + tuple(synthetic_agreement(i) for i in range(n)), DATASETS)
