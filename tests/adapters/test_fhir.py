"""The FHIR adapter against the demo NHS FHIR server over loopback HTTP, and the PDS example."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.errors import (
    CircuitOpen,
    MultipleMatches,
    SourceBadData,
    SourceTimeout,
    SourceUnavailable,
    SubjectNotFound,
    WrongSubject,
)
from adapters.resilience import BreakerState, CircuitBreaker
from broker.core import nhs_number
from broker.core.identifiers import parse_subject
from demo.sources import subjects
from demo.sources.runtime import DemoSources, ServerThread
from tests.adapters.conftest import FakeClock, open_sources, tight

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pds" / "PatientSearch.json"
DEMOGRAPHICS = "r9z.patient-demographics"
FIELDS = [
    "nhs_number",
    "name.given",
    "name.family",
    "date_of_birth",
    "gender",
    "address.line",
    "address.postcode",
    "gp.practice_code",
    "telecom.phone",
]


def state_of(b: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (a property mypy would otherwise narrow)."""
    return b.state


def nhs(number: str) -> Any:
    return parse_subject("nhs_number", number)


async def test_demographics_of_the_child_on_a_plan(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(DEMOGRAPHICS, nhs(subjects.CHILD_ON_PLAN.nhs_number), FIELDS)
    assert record == {
        "nhs_number": "9990000018",
        "name": {"given": "Amelia", "family": "Hartley"},
        "date_of_birth": "2020-05-15",
        "gender": "female",
        "address": {"line": "14 Weaver Street, Calderbridge", "postcode": "CX1 4AB"},
        "gp": {"practice_code": "Y99901"},
        "telecom": {"phone": "01632960246"},
    }


async def test_only_asked_fields(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(DEMOGRAPHICS, nhs("9990000018"), ["gp.practice_code"])
    assert record == {"gp": {"practice_code": "Y99901"}}


async def test_ed_attendance_and_discharge_summary(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        ed = await sources.fetch(
            "r9z.ed-attendances",
            nhs(subjects.CHILD_ON_PLAN.nhs_number),
            ["attendance.date", "attendance.reason", "attendance.site"],
        )
        discharge = await sources.fetch(
            "r9z.discharge-summary",
            nhs(subjects.DISCHARGE_PATIENT.nhs_number),
            [
                "admission.date",
                "discharge.expected_date",
                "care_needs.mobility",
                "diagnosis.primary",
            ],
        )
        nothing = await sources.fetch(
            "r9z.discharge-summary",
            nhs(subjects.CHILD_WITHOUT_PLAN.nhs_number),
            ["admission.date", "diagnosis.primary"],
        )
    assert ed == {
        "attendance": {
            "date": "2026-10-30",
            "reason": "Head injury",
            "site": "Calderbridge Royal Infirmary ED",
        }
    }
    assert discharge == {
        "admission": {"date": "2026-10-24"},
        "discharge": {"expected_date": "2026-11-03"},
        "care_needs": {"mobility": "walking frame, assistance of one"},
        "diagnosis": {"primary": "Fracture of neck of femur"},
    }
    assert nothing == {"admission": {"date": None}, "diagnosis": {"primary": None}}


async def test_unknown_patient_is_not_found(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(SubjectNotFound, match="no Patient"):
            await sources.fetch(DEMOGRAPHICS, nhs(nhs_number.test_number(20_000)), ["name.family"])


async def test_verify_answers_without_values(demo: DemoSources) -> None:
    subject = nhs(subjects.CHILD_ON_PLAN.nhs_number)
    async with open_sources(demo.bindings) as sources:
        yes = await sources.verify(
            DEMOGRAPHICS, subject, {"date_of_birth": "2020-05-15", "address.postcode": "cx14ab"}
        )
        no = await sources.verify(DEMOGRAPHICS, subject, {"date_of_birth": "2020-05-16"})
    assert (yes.match, no.match) == (True, False)
    assert yes.record_key == no.record_key == f"@key={subjects.CHILD_ON_PLAN.nhs_number}"


@pytest.mark.parametrize(
    ("mode", "dataset", "error", "match"),
    [
        pytest.param(
            "wrong_person",
            DEMOGRAPHICS,
            WrongSubject,
            "not the one asked for",
            id="patient-of-another-person",
        ),
        pytest.param(
            "two_matches", DEMOGRAPHICS, MultipleMatches, "matched 2", id="two-patients-match"
        ),
        pytest.param("garbage", DEMOGRAPHICS, SourceBadData, "not JSON", id="garbage"),
        pytest.param(
            "invalid", DEMOGRAPHICS, SourceBadData, "not a valid Bundle", id="invalid-fhir"
        ),
    ],
)
async def test_patient_faults(
    demo: DemoSources, mode: str, dataset: str, error: type[Exception], match: str
) -> None:
    demo.fhir_faults.set(mode)
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(error, match=match):
            await sources.fetch(dataset, nhs("9990000018"), ["name.family"])


async def test_encounter_of_another_patient_is_refused(demo: DemoSources) -> None:
    demo.fhir_faults.set("wrong_person", skip=1)  # the Patient search is answered correctly
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(WrongSubject, match="Encounter in the answer is about another"):
            await sources.fetch("r9z.ed-attendances", nhs("9990000018"), ["attendance.date"])


async def test_slow_source_times_out_within_its_budget(demo: DemoSources) -> None:
    bindings = tight(demo.bindings, "r9z-fhir", read_seconds=0.3)
    demo.fhir_faults.set("slow", delay_seconds=2.0)
    async with open_sources(bindings) as sources:
        started = time.monotonic()
        with pytest.raises(SourceTimeout, match="timed out"):
            await sources.fetch(DEMOGRAPHICS, nhs("9990000018"), ["name.family"])
        elapsed = time.monotonic() - started
    assert demo.fhir_faults.requests_seen == 1  # a read timeout is not retried
    assert elapsed < 0.5 + 0.3 + 1.0  # connect + read budget, with generous slack


async def test_500s_are_retried_then_unavailable(demo: DemoSources) -> None:
    bindings = tight(demo.bindings, "r9z-fhir", attempts=3)
    demo.fhir_faults.set("error")
    async with open_sources(bindings) as sources:
        with pytest.raises(SourceUnavailable, match="HTTP 500"):
            await sources.fetch(DEMOGRAPHICS, nhs("9990000018"), ["name.family"])
    assert demo.fhir_faults.requests_seen == 3


async def test_a_transient_500_is_absorbed_by_a_retry(demo: DemoSources) -> None:
    demo.fhir_faults.set("error", times=1)
    async with open_sources(tight(demo.bindings, "r9z-fhir")) as sources:
        record = await sources.fetch(DEMOGRAPHICS, nhs("9990000018"), ["name.family"])
    assert record == {"name": {"family": "Hartley"}}
    assert demo.fhir_faults.requests_seen == 2


async def test_circuit_opens_half_opens_and_closes(demo: DemoSources) -> None:
    clock = FakeClock()
    bindings = tight(demo.bindings, "r9z-fhir", attempts=1, threshold=3, reset_seconds=10)
    subject = nhs("9990000018")
    async with open_sources(bindings, clock=clock) as sources:
        breaker = sources.adapter("r9z-fhir").breaker  # type: ignore[attr-defined]
        demo.fhir_faults.set("error")
        for _ in range(3):
            with pytest.raises(SourceUnavailable, match="HTTP 500"):
                await sources.fetch(DEMOGRAPHICS, subject, ["name.family"])
        assert state_of(breaker) is BreakerState.OPEN
        seen = demo.fhir_faults.requests_seen
        with pytest.raises(CircuitOpen, match="circuit open"):
            await sources.fetch(DEMOGRAPHICS, subject, ["name.family"])
        assert demo.fhir_faults.requests_seen == seen  # the source was not asked
        clock.advance(10)
        assert state_of(breaker) is BreakerState.HALF_OPEN
        with pytest.raises(SourceUnavailable, match="HTTP 500"):  # the trial fails: open again
            await sources.fetch(DEMOGRAPHICS, subject, ["name.family"])
        assert state_of(breaker) is BreakerState.OPEN
        demo.fhir_faults.clear()
        clock.advance(10)
        record = await sources.fetch(DEMOGRAPHICS, subject, ["name.family"])
        assert record == {"name": {"family": "Hartley"}}
        assert state_of(breaker) is BreakerState.CLOSED
        assert sources.breaker_states()["r9z-fhir"] == "closed"


@pytest.fixture(scope="module")
def pds_sandbox() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server answering every Patient search with NHS Digital's published example."""
    body = FIXTURE.read_bytes()
    seen: list[dict[str, str]] = []

    async def search(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.Response(body=body, content_type="application/fhir+json")

    app = web.Application()
    app.router.add_get("/personal-demographics/FHIR/R4/Patient", search)
    servers = ServerThread()
    try:
        yield servers.serve(app) + "/personal-demographics/FHIR/R4", seen
    finally:
        servers.stop()


async def test_pds_sandbox_example_maps(
    demo: DemoSources, pds_sandbox: tuple[str, list[dict[str, str]]]
) -> None:
    # 9000000009 is NHS Digital's sandbox patient: valid Modulus 11, outside the 999 test range.
    url, seen = pds_sandbox
    bindings = demo.bindings.with_source("r9z-fhir", endpoint=url)
    async with open_sources(bindings) as sources:
        record = await sources.fetch(DEMOGRAPHICS, nhs("9000000009"), FIELDS)
        with pytest.raises(WrongSubject, match="not the one asked for"):
            await sources.fetch(DEMOGRAPHICS, nhs("9990000018"), ["name.family"])
    assert record == {
        "nhs_number": "9000000009",
        "name": {"given": "Jane", "family": "Smith"},
        "date_of_birth": "2010-10-22",
        "gender": "female",
        "address": {
            "line": "1 Trevelyan Square, Boar Lane, City Centre, Leeds, West Yorkshire",
            "postcode": "LS1 6AE",
        },
        "gp": {"practice_code": "Y12345"},
        "telecom": {"phone": "01632960587"},
    }
    assert seen[0]["identifier"] == "https://fhir.nhs.uk/Id/nhs-number|9000000009"
    assert set(seen[0]["_elements"].split(",")) == {
        "identifier",
        "name",
        "birthDate",
        "gender",
        "address",
        "generalPractitioner",
        "telecom",
    }


def test_fixture_names_its_source() -> None:
    assert (
        "NHSDigital/personal-demographics-service-api" in (FIXTURE.parent / "SOURCE.md").read_text()
    )
    assert json.loads(FIXTURE.read_text())["entry"][0]["resource"]["id"] == "9000000009"


async def test_cp_is_flag_maps_when_a_dataset_asks_for_it(demo: DemoSources) -> None:
    from adapters.bindings import BindingSet, DatasetBinding

    base = demo.bindings.get(DEMOGRAPHICS)
    flags = DatasetBinding(
        dataset="r9z.cp-is-flags",
        source=base.source,
        identifiers=base.identifiers,
        fields={"flag.code": "Flag.code.coding.first().code", "flag.since": "Flag.period.start"},
        options={
            "resources": {
                "Flag": {"params": {"status": "active"}, "latest_by": "Flag.period.start"}
            }
        },
    )
    async with open_sources(BindingSet({"r9z.cp-is-flags": flags})) as sources:
        on_plan = await sources.fetch(
            "r9z.cp-is-flags", nhs(subjects.CHILD_ON_PLAN.nhs_number), ["flag.code", "flag.since"]
        )
        none = await sources.fetch(
            "r9z.cp-is-flags", nhs(subjects.CHILD_WITHOUT_PLAN.nhs_number), ["flag.code"]
        )
    assert on_plan == {"flag": {"code": "CPP", "since": "2026-08-14"}}
    assert none == {"flag": {"code": None}}
