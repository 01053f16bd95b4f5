"""Periodic jobs run once across instances: the one holding the job's lease runs it."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy import Engine

from broker.db.leases import JobLeases, Lease
from broker.db.migrate import upgrade


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _lease(engine: Engine, holder: str, clock: _Clock) -> Lease:
    return Lease(engine, "audit-jobs", holder=holder, seconds=15, retry_seconds=1, clock=clock)


def test_one_holder_at_a_time_and_a_dead_holder_is_replaced(engine: Engine) -> None:
    upgrade(engine)
    clock = _Clock()
    a, b = _lease(engine, "host-a:1", clock), _lease(engine, "host-b:1", clock)
    assert a.held()
    assert not b.held()
    for _ in range(10):  # a renews every 5 s; b tries every second and is refused
        clock.now += 5
        assert a.held()
        assert not b.held()
    clock.now += 16  # a died: it renews no more, and its lease runs out
    assert b.held()
    assert not a.held()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, holder FROM leases")).all()
    assert [tuple(r) for r in rows] == [("audit-jobs", "host-b:1")]


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    upgrade(engine)
    clock = _Clock()
    a, b = _lease(engine, "host-a:1", clock), _lease(engine, "host-b:1", clock)
    assert a.held()
    assert not b.held()
    a.release()
    clock.now += 1
    assert b.held()


def test_holders_racing_for_a_free_lease_get_it_once(engine: Engine) -> None:
    upgrade(engine)
    holders = 6
    start = threading.Barrier(holders)
    results: list[bool] = []

    def race(i: int) -> None:
        lease = Lease(engine, "outbox-delivery", holder=f"host-{i}:1", seconds=15)
        start.wait()
        results.append(lease.held())

    threads = [threading.Thread(target=race, args=(i,)) for i in range(holders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * (holders - 1) + [True]


def test_two_instances_each_hold_their_own_jobs_apart(engine: Engine) -> None:
    """Two instances' job leases: each job is held by exactly one of them."""
    upgrade(engine)
    first, second = JobLeases(engine, seconds=15), JobLeases(engine, seconds=15)
    assert first.holder != second.holder
    assert (first.audit.held(), second.audit.held()) == (True, False)
    assert (second.outbox.held(), first.outbox.held()) == (True, False)
    first.release()
    assert second.audit.held() is False  # its refusal is remembered for retry_seconds
