"""The existence lookup every adapter answers (a consent needs a person the source knows): the
demo's SQL, FHIR, REST and document sources each know their well-known subjects and not
P9999999; a failing source raises rather than answering "no"."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.bindings import BindingSet
from adapters.errors import SourceError
from adapters.sources import Sources
from broker.core.identifiers import SubjectId
from demo.sources.subjects import BENEFITS_CLAIMANT, CHILD_ON_PLAN

KNOWN = [
    ("ccc.proof-documents", SubjectId("person_id", BENEFITS_CLAIMANT.person_id)),  # documents
    ("ccc.proof-documents", SubjectId("nhs_number", BENEFITS_CLAIMANT.nhs_number)),
    ("ccc.child-protection", SubjectId("person_id", CHILD_ON_PLAN.person_id)),  # sql
    ("r9z.patient-demographics", SubjectId("nhs_number", CHILD_ON_PLAN.nhs_number)),  # fhir
    ("wcp.police-concerns", SubjectId("nhs_number", CHILD_ON_PLAN.nhs_number)),  # rest
]


@pytest.mark.parametrize(("dataset", "subject"), KNOWN, ids=lambda v: str(v))
async def test_a_known_subject_exists_and_an_unknown_one_does_not(
    demo_sources: Any, dataset: str, subject: SubjectId
) -> None:
    sources = Sources(demo_sources.bindings)
    try:
        assert await sources.exists(dataset, subject) is True
        unknown = (
            SubjectId("person_id", "P9999999")
            if subject.type == "person_id"
            else SubjectId("nhs_number", "9999999999")
        )
        assert await sources.exists(dataset, unknown) is False
    finally:
        await sources.aclose()


async def test_a_failing_source_raises(demo_sources: Any, tmp_path: Any) -> None:
    bindings: BindingSet = demo_sources.bindings
    source = bindings.get("ccc.child-protection").source.name
    sources = Sources(
        bindings.with_source(source, endpoint=f"sqlite:///{tmp_path}/missing/none.db")
    )
    try:
        with pytest.raises(SourceError):
            await sources.exists("ccc.child-protection", SubjectId("person_id", "P0000001"))
    finally:
        await sources.aclose()
