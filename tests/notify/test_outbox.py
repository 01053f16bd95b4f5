"""The outbox row and the audit entry commit together or not at all; no identifier in clear."""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, select

from broker.audit import store as audit_store
from broker.audit.errors import AuditUnavailableError
from broker.audit.log import AuditLog, LogSigner
from broker.audit.memory import MemoryAuditLog
from broker.audit.tables import audit_entries
from broker.notify.outbox import OutboxStore, backoff_seconds, enqueue_notification
from broker.notify.sealing import SealingError, SubjectSealer
from broker.notify.tables import outbox
from demo.parties import HOSPITAL
from tests.audit.conftest import make_entry
from tests.notify.conftest import CHILD, T0, notice


def _log(engine: Engine) -> AuditLog:
    return AuditLog(engine, LogSigner("broker.test.example/audit", Ed25519PrivateKey.generate()))


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _exchange_entries(engine: Engine) -> int:
    """Entries of exchanges (the fixture's registrations are admin entries of the log too)."""
    with engine.connect() as conn:
        query = select(func.count()).select_from(audit_entries)
        return int(conn.execute(query.where(audit_entries.c.kind == "exchange")).scalar_one())


def _writer(sealer: SubjectSealer, exchange_id: str) -> audit_store.ExtraRows:
    def write(conn: Connection) -> None:
        enqueue_notification(
            conn, notice(exchange_id), now_ms=int(T0 * 1000), subject=CHILD, sealer=sealer
        )

    return write


def test_the_outbox_row_is_written_with_the_audit_entry(
    engine: Engine, sealer: SubjectSealer
) -> None:
    entry = make_entry(1)
    before = _exchange_entries(engine)  # the fixture's registrations are admin entries
    _log(engine).append(entry, extras=[_writer(sealer, entry.exchange_id)])
    rows = OutboxStore(engine).for_exchange(entry.exchange_id)
    assert [(r.party_id, r.status, r.attempts) for r in rows] == [
        ("calderbridge-city-council", "pending", 0)
    ]
    assert _exchange_entries(engine) == before + 1


def test_a_failed_audit_commit_writes_no_outbox_row(
    engine: Engine, sealer: SubjectSealer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    # The extra rows are already written when the head update fails: all must roll back.
    monkeypatch.setattr(audit_store, "_move_head", broken)
    entry = make_entry(2)
    before = _exchange_entries(engine)
    with pytest.raises(AuditUnavailableError, match="disk full"):
        _log(engine).append(entry, extras=[_writer(sealer, entry.exchange_id)])
    assert _count(engine, outbox) == 0
    assert _exchange_entries(engine) == before


def test_a_refused_duplicate_entry_writes_no_outbox_row(
    engine: Engine, sealer: SubjectSealer
) -> None:
    log = _log(engine)
    entry = make_entry(3)
    log.append(entry)
    with pytest.raises(AuditUnavailableError, match="duplicate exchange id"):
        log.append(entry, extras=[_writer(sealer, entry.exchange_id)])
    assert _count(engine, outbox) == 0


def test_a_failed_outbox_write_logs_no_entry(engine: Engine) -> None:
    def failing(conn: Connection) -> None:
        raise ValueError("outbox unavailable")

    with pytest.raises(AuditUnavailableError, match=r"extra rows failed: .*outbox unavailable"):
        _log(engine).append(make_entry(4), extras=[failing])
    assert _exchange_entries(engine) == 0
    assert _count(engine, outbox) == 0


def test_one_callers_failing_extra_fails_only_that_caller(
    engine: Engine, sealer: SubjectSealer
) -> None:
    log = _log(engine)
    entries = [make_entry(10 + i) for i in range(8)]
    outcomes: dict[int, str] = {}
    start = threading.Barrier(len(entries))

    def failing(conn: Connection) -> None:
        raise ValueError("this caller's rows are bad")

    def run(i: int) -> None:
        extra = failing if i == 3 else _writer(sealer, entries[i].exchange_id)
        start.wait()
        try:
            log.append(entries[i], extras=[extra])
            outcomes[i] = "ok"
        except AuditUnavailableError:
            outcomes[i] = "failed"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(entries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == {i: "failed" if i == 3 else "ok" for i in range(8)}
    assert _exchange_entries(engine) == 7
    assert _count(engine, outbox) == 7
    assert OutboxStore(engine).for_exchange(entries[3].exchange_id) == []


def test_the_memory_log_runs_extras_in_a_transaction_on_its_engine(
    engine: Engine, sealer: SubjectSealer
) -> None:
    memory = MemoryAuditLog(engine)
    entry = make_entry(5)
    memory.append(entry, extras=[_writer(sealer, entry.exchange_id)])
    assert len(OutboxStore(engine).for_exchange(entry.exchange_id)) == 1
    memory.failing = True
    with pytest.raises(AuditUnavailableError):
        memory.append(make_entry(6), extras=[_writer(sealer, "other")])
    assert OutboxStore(engine).for_exchange("other") == []


def test_no_identifier_is_stored_in_clear(engine: Engine, sealer: SubjectSealer) -> None:
    with engine.begin() as conn:
        row_id = enqueue_notification(
            conn, notice(), now_ms=int(T0 * 1000), subject=CHILD, sealer=sealer
        )
    with engine.connect() as conn:
        raw = conn.execute(select(outbox).where(outbox.c.id == row_id)).one()
    for value in raw:
        as_bytes = value if isinstance(value, bytes) else str(value).encode()
        assert CHILD.value.encode() not in as_bytes
    row = OutboxStore(engine).get(row_id)
    assert row is not None
    assert row.subject_sealed is not None
    assert sealer.open(row.subject_sealed, "v1", row_id) == CHILD


def test_the_payload_carries_the_recipients_own_reference_not_the_brokers_pseudonym(
    engine: Engine, sealer: SubjectSealer
) -> None:
    """The pseudonym is what governance searches show: next to the identifier a provider could
    map pseudonyms back to people. The reference is the recipient's own: stable for it,
    different for another provider, and not the pseudonym."""
    pseudonym = notice().subject_pseudonym
    assert pseudonym is not None
    with engine.begin() as conn:
        first = enqueue_notification(conn, notice(), now_ms=1, subject=CHILD, sealer=sealer)
        again = enqueue_notification(conn, notice(), now_ms=2, subject=CHILD, sealer=sealer)
        other = enqueue_notification(
            conn,
            dataclasses.replace(notice(), provider_party=HOSPITAL),
            now_ms=3,
            subject=CHILD,
            sealer=sealer,
        )
    with engine.connect() as conn:
        for raw in conn.execute(select(outbox)).all():
            for value in raw:
                as_bytes = value if isinstance(value, bytes) else str(value).encode()
                assert pseudonym.value.encode() not in as_bytes
    store = OutboxStore(engine)
    payloads = [store.get(i).payload for i in (first, again, other)]  # type: ignore[union-attr]
    assert all("subject_pseudonym" not in p for p in payloads)
    references = [p["subject_reference"] for p in payloads]
    assert references[0].startswith("ref_")
    assert references[0] == references[1]
    assert references[2] != references[0]
    assert pseudonym.value not in references


def test_a_sealed_identifier_does_not_open_in_another_row(sealer: SubjectSealer) -> None:
    sealed, version = sealer.seal(CHILD, "row-a")
    with pytest.raises(SealingError, match="altered or moved"):
        sealer.open(sealed, version, "row-b")
    with pytest.raises(SealingError, match="no pseudonym key of version 'v9'"):
        sealer.open(sealed, "v9", "row-a")


def test_a_subject_is_never_queued_unsealed(engine: Engine) -> None:
    with pytest.raises(ValueError, match="pass a sealer"), engine.begin() as conn:
        enqueue_notification(conn, notice(), now_ms=0, subject=CHILD)


def test_without_a_subject_only_the_pseudonym_is_queued(engine: Engine) -> None:
    with engine.begin() as conn:
        row_id = enqueue_notification(conn, notice(), now_ms=0)
    row = OutboxStore(engine).get(row_id)
    assert row is not None
    assert row.subject_sealed is None
    assert row.subject_key_version is None


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(engine: Engine) -> None:
    with engine.begin() as conn:
        row_id = enqueue_notification(conn, notice(str(uuid.uuid4())), now_ms=1000)
    store = OutboxStore(engine)
    assert [r.id for r in store.claim_due(1000, limit=10, lease_ms=60_000)] == [row_id]
    assert store.claim_due(2000, limit=10, lease_ms=60_000) == []
    # A process that claimed it and died: the row is due again once the lease is over.
    assert [r.id for r in store.claim_due(61_000, limit=10, lease_ms=60_000)] == [row_id]


def test_claims_running_at_once_never_take_a_row_twice(engine: Engine) -> None:
    with engine.begin() as conn:
        queued = [
            enqueue_notification(conn, notice(str(uuid.uuid4())), now_ms=1000) for _ in range(60)
        ]
    store = OutboxStore(engine)
    claimed: list[str] = []
    start = threading.Barrier(4)

    def claimer() -> None:  # another broker process's worker
        start.wait()
        while rows := store.claim_due(2000, limit=7, lease_ms=60_000):
            claimed.extend(r.id for r in rows)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(queued)


def test_a_row_is_not_due_before_its_time(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue_notification(conn, notice(), now_ms=5000)
    assert OutboxStore(engine).claim_due(4999, limit=10, lease_ms=1) == []


@hsettings(max_examples=100)
@given(
    attempts=st.integers(1, 40),
    base=st.floats(0.01, 60),
    cap=st.floats(1, 7200),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_exponential_capped_and_jittered_within_half(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    import random

    ceiling = min(cap, base * 2.0 ** (attempts - 1))
    delay = backoff_seconds(attempts, base_seconds=base, max_seconds=cap, rng=random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_prune_deletes_only_delivered_rows_older_than_the_cut_off(engine: Engine) -> None:
    from broker.notify.outbox import Outcome
    from tests.notify.conftest import Clock, enqueue

    clock = Clock()
    store = OutboxStore(engine)
    old, recent, pending, failed = (enqueue(engine, clock) for _ in range(4))
    t0 = int(clock() * 1000)
    store.record(
        [
            Outcome(row_id=old, delivered_ms=t0),
            Outcome(row_id=recent, delivered_ms=t0 + 10_000),
            Outcome(row_id=failed, error="410 Gone"),
        ]
    )
    assert store.prune(t0 + 5_000, batch=1) == 1
    assert store.get(old) is None
    assert {r for r in (recent, pending, failed) if store.get(r) is not None} == {
        recent,
        pending,
        failed,
    }
    assert store.prune(t0 + 5_000) == 0
