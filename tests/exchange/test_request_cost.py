"""What a request costs from the size of its input (an exchange naming 200 unknown
200-character fields took 76 ms of CPU against 9 ms for a normal one; a policy simulation with
200 fields 68 ms).

The names a request lists are capped (each, how many, all together) and checked against the
dataset's catalogue before the policy is asked; a 422 names the limit or the name. CPU is
measured (``time.process_time``: every thread of this process, the broker's included), never
wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from broker.exchange.request import NAME_MAX_CHARS, NAMES_MAX, NAMES_MAX_TOTAL_CHARS
from tests.exchange.helpers import admissions, log_size, post, safeguarding, verified
from tests.support import LiveBroker, demo_key

ED = "r9z-ed-safeguarding"
OFFICER = "r9z-governance"
DATASET = "ccc.child-protection"
REPEATS = 10
MARGINAL_CPU_MS = 8.0
"""What the largest allowed input may add to the CPU of the smallest (measured: about 2 ms)."""
REFUSED_CPU_MS = 15.0
"""A request refused for its names, whole (measured: under 3 ms)."""

_LETTERS = "abcdefghij"


def unknown_names(count: int, length: int) -> list[str]:
    """``count`` distinct well-formed names of ``length`` characters, in no catalogue."""
    return [
        "x" * (length - 5) + "".join(_LETTERS[int(d)] for d in f"{i:05d}") for i in range(count)
    ]


def catalogue(broker: LiveBroker) -> list[str]:
    last = broker.services.policy_runtime.last
    assert last is not None
    return sorted(last.register.entries[DATASET].field_names())


SIMULATION: dict[str, Any] = {
    "as_party": "R9Z",
    "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
    "purpose": "child-protection-check",
    "dataset": DATASET,
    "fields": ["name.family"],
    "role": "safeguarding-nurse",
    "case_reference": True,
}


def simulate(broker: LiveBroker, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    token = token or broker.token(OFFICER, demo_key(OFFICER))
    return broker.http.post(
        "/v1/policy/simulate", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [f"{e['location']}: {e['message']}" for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(unknown_names(200, 200), "at most 100 characters", id="the-issue's-200x200"),
        pytest.param(unknown_names(NAMES_MAX + 1, 10), "at most 200 items", id="201-names"),
        pytest.param(
            unknown_names(41, NAME_MAX_CHARS),
            f"the names listed total 4100 characters: at most {NAMES_MAX_TOTAL_CHARS}",
            id="over-the-total",
        ),
        pytest.param(
            ["name.family", "no_such.field"],
            "fields[1]: 'no_such.field' is not a field of dataset ccc.child-protection",
            id="unknown",
        ),
        pytest.param(
            ["name.family", "name.family"], "fields[1]: 'name.family' is named twice", id="twice"
        ),
    ],
)
def test_names_past_a_limit_are_refused_naming_it(
    broker: LiveBroker, fields: list[str], expected: str
) -> None:
    before = log_size(broker)
    exchange = post(broker, ED, safeguarding(fields=fields))
    assert any(expected in m for m in messages(exchange)), exchange.text
    dry_run = simulate(broker, {**SIMULATION, "fields": fields})
    assert any(expected in m for m in messages(dry_run)), dry_run.text
    assert log_size(broker) == before  # nothing was decided


def test_claims_are_checked_as_fields_are(broker: LiveBroker) -> None:
    body = admissions(claims={"address.postcode": "CX2 7PQ", "address.planet": "Earth"})
    assert messages(post(broker, "ccc-school-admissions", body)) == [
        "claims.address.planet: 'address.planet' is not a field of dataset ccc.council-tax"
    ]


def test_every_catalogue_field_once_is_the_largest_request_and_is_answered(
    broker: LiveBroker,
) -> None:
    names = catalogue(broker)
    response = post(broker, ED, safeguarding(fields=names))
    assert response.status_code == 200, response.text
    decision = response.json()["decision"]
    answered = decision["released_fields"] + [w["field"] for w in decision["withheld_fields"]]
    assert sorted(answered) == names


def cpu_ms(send: Callable[[], httpx.Response], status: int) -> float:
    """CPU of this whole process per request, over REPEATS requests (after one to warm up): the
    least of three such rounds, so that work of other threads in a shared, busy process counts
    as little as it can."""
    assert send().status_code == status
    rounds = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(REPEATS):
            response = send()
            assert response.status_code == status, response.text
        rounds.append((time.process_time() - start) * 1000 / REPEATS)
    return min(rounds)


def test_cpu_from_input_size_alone_stays_small(broker: LiveBroker) -> None:
    token = broker.token(ED, demo_key(ED))
    bearer = {"Authorization": f"Bearer {token}"}

    def exchange(fields: list[str]) -> Callable[[], httpx.Response]:
        body = verified(broker, ED, safeguarding(fields=fields))
        return lambda: broker.http.post("/v1/exchanges", json=body, headers=bearer)

    officer = broker.token(OFFICER, demo_key(OFFICER))

    def dry_run(fields: list[str]) -> Callable[[], httpx.Response]:
        return lambda: simulate(broker, {**SIMULATION, "fields": fields}, officer)

    every_field = catalogue(broker)
    many_unknown = unknown_names(NAMES_MAX, NAMES_MAX_TOTAL_CHARS // NAMES_MAX)
    smallest = cpu_ms(exchange(["name.family"]), 200)
    largest = cpu_ms(exchange(every_field), 200)
    refused = cpu_ms(exchange(many_unknown), 422)
    too_long = cpu_ms(exchange(unknown_names(NAMES_MAX, 200)), 422)
    assert largest - smallest < MARGINAL_CPU_MS, (smallest, largest)
    assert refused < REFUSED_CPU_MS
    assert too_long < REFUSED_CPU_MS

    smallest = cpu_ms(dry_run(["name.family"]), 200)
    largest = cpu_ms(dry_run(every_field), 200)
    refused = cpu_ms(dry_run(many_unknown), 422)
    assert largest - smallest < MARGINAL_CPU_MS, (smallest, largest)
    assert refused < REFUSED_CPU_MS
