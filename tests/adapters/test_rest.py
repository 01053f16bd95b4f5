"""The REST/JSON adapter against the demo police service over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.errors import (
    MultipleMatches,
    SourceBadData,
    SourceTimeout,
    SourceUnavailable,
    SubjectNotFound,
    WrongSubject,
)
from adapters.rest import resolve_pointer
from broker.core import nhs_number
from broker.core.identifiers import parse_subject
from demo.sources import subjects
from demo.sources.runtime import DemoSources
from tests.adapters.conftest import open_sources, tight

POLICE = "wcp.police-concerns"
FIELDS = [
    "concerns.count",
    "concerns.latest_date",
    "concerns.latest_category",
    "domestic_abuse.notifications_last_12_months",
]


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        pytest.param("nhs_number", subjects.CHILD_ON_PLAN.nhs_number, id="nhs-number"),
        pytest.param("person_id", subjects.CHILD_ON_PLAN.person_id, id="person-id"),
    ],
)
async def test_concerns_of_the_child_on_a_plan(demo: DemoSources, id_type: str, value: str) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(POLICE, parse_subject(id_type, value), FIELDS)
    assert record == {
        "concerns": {"count": 3, "latest_date": "2026-10-02", "latest_category": "domestic-abuse"},
        "domestic_abuse": {"notifications_last_12_months": 2},
    }


async def test_no_concerns_and_unknown_person(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        none = await sources.fetch(
            POLICE,
            parse_subject("nhs_number", subjects.CHILD_WITHOUT_PLAN.nhs_number),
            ["concerns.count", "concerns.latest_date"],
        )
        with pytest.raises(SubjectNotFound, match="no record"):
            await sources.fetch(
                POLICE,
                parse_subject("nhs_number", nhs_number.test_number(20_000)),
                ["concerns.count"],
            )
    assert none == {"concerns": {"count": 0, "latest_date": None}}


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        pytest.param("wrong_person", WrongSubject, "not the one asked for", id="another-person"),
        pytest.param("two_matches", MultipleMatches, "matched 2", id="two-matches"),
        pytest.param("garbage", SourceBadData, "not JSON", id="garbage"),
        pytest.param("invalid", SourceBadData, "no results", id="unexpected-json"),
    ],
)
async def test_faults(demo: DemoSources, mode: str, error: type[Exception], match: str) -> None:
    demo.police_faults.set(mode)
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(error, match=match):
            await sources.fetch(POLICE, parse_subject("person_id", "P0000001"), ["concerns.count"])


async def test_slow_and_failing_police_service(demo: DemoSources) -> None:
    bindings = tight(demo.bindings, "wcp-police", read_seconds=0.2, attempts=2)
    subject = parse_subject("person_id", "P0000001")
    async with open_sources(bindings) as sources:
        demo.police_faults.set("slow", delay_seconds=1.5)
        with pytest.raises(SourceTimeout, match="timed out"):
            await sources.fetch(POLICE, subject, ["concerns.count"])
        demo.police_faults.set("error")
        with pytest.raises(SourceUnavailable, match="HTTP 500"):
            await sources.fetch(POLICE, subject, ["concerns.count"])
        assert demo.police_faults.requests_seen == 2


async def test_type_mismatch_names_the_field(demo: DemoSources) -> None:
    binding = demo.bindings.get(POLICE)
    broken = binding.model_copy(
        update={"options": {**binding.options, "types": {"concerns.latest_category": "integer"}}}
    )
    from adapters.bindings import BindingSet

    async with open_sources(BindingSet({POLICE: broken})) as sources:
        with pytest.raises(SourceBadData, match=r"field concerns\.latest_category") as caught:
            await sources.fetch(
                POLICE, parse_subject("person_id", "P0000001"), ["concerns.latest_category"]
            )
    assert caught.value.field == "concerns.latest_category"


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        pytest.param("", {"a/b": {"~c": [1, 2]}}, id="whole-document"),
        pytest.param("/a~1b/~0c/1", 2, id="escapes-and-index"),
    ],
)
def test_json_pointer(pointer: str, expected: object) -> None:
    assert resolve_pointer({"a/b": {"~c": [1, 2]}}, pointer) == expected


def test_json_pointer_must_start_with_slash() -> None:
    with pytest.raises(ValueError, match="starts with '/'"):
        resolve_pointer({}, "a")


async def test_refused_connection_is_unavailable(demo: DemoSources) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    bindings = tight(demo.bindings, "wcp-police", attempts=2).with_source(
        "wcp-police", endpoint=f"http://127.0.0.1:{closed_port}"
    )
    async with open_sources(bindings) as sources:
        with pytest.raises(SourceUnavailable, match="unreachable: ClientConnectorError"):
            await sources.fetch(POLICE, parse_subject("person_id", "P0000001"), ["concerns.count"])


@pytest.fixture(scope="module")
def big_answers() -> Iterator[str]:
    """A loopback REST source whose answer is large (arrives in many chunks)."""
    from aiohttp import web

    from demo.sources.runtime import ServerThread

    padding = "x" * 1_500_000

    async def concerns(request: web.Request) -> web.Response:
        match = {
            "subject": {"person_id": request.query["person_id"]},
            "concerns": {"count": 1},
            "padding": padding,
        }
        return web.json_response({"results": [match]})

    app = web.Application()
    app.router.add_get("/api/v1/concerns", concerns)
    servers = ServerThread()
    try:
        yield servers.serve(app)
    finally:
        servers.stop()


@pytest.mark.parametrize(
    ("max_body_bytes", "outcome"),
    [
        pytest.param(4_000_000, {"concerns": {"count": 1}}, id="large-body-read-whole"),
        pytest.param(100_000, SourceBadData, id="over-the-limit"),
    ],
)
async def test_large_answers(
    demo: DemoSources, big_answers: str, max_body_bytes: int, outcome: object
) -> None:
    bindings = demo.bindings.with_source(
        "wcp-police", endpoint=big_answers, options={"max_body_bytes": max_body_bytes}
    )
    subject = parse_subject("person_id", "P0000001")
    async with open_sources(bindings) as sources:
        if isinstance(outcome, dict):
            assert await sources.fetch(POLICE, subject, ["concerns.count"]) == outcome
        else:
            with pytest.raises(SourceBadData, match="too large"):
                await sources.fetch(POLICE, subject, ["concerns.count"])
