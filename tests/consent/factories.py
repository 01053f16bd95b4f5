"""Consent records for tests (synthetic; pseudonyms are made-up hex)."""

from __future__ import annotations

import dataclasses
from typing import Any

from broker.consent.model import ConsentRecord

COUNCIL = "calderbridge-city-council"
DAY_MS = 86_400_000
T0 = 1_790_000_000_000  # 2026-09-21, UTC ms


def record(**changes: Any) -> ConsentRecord:
    base = ConsentRecord(
        id="6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
        status="active",
        agreement_id="ISA-PROOF-REUSE",
        agreement_version=1,
        subject_type="person_id",
        subject_pseudonym="ab" * 32,
        subject_key_version="v1",
        from_party=COUNCIL,
        to_party=COUNCIL,
        purpose="homelessness-assessment",
        datasets=("ccc.proof-documents",),
        document_types=(),
        period_start_ms=T0,
        period_end_ms=T0 + 30 * DAY_MS,
        collection_method="written",
        recorded_by_name="Priya Marsh",
        recorded_by_role="Benefits officer",
        recorder_party=COUNCIL,
        recorder_client="ccc-revenues-benefits",
        recorded_at_ms=T0,
    )
    return dataclasses.replace(base, **changes)
