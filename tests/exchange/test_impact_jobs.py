"""Impact runs on the database (SQLite, and PostgreSQL when configured): the job's row, the log
read, the period and the cap, who may read a run, and what is never read into a report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from broker.agreements.authoring import read_document
from broker.agreements.loader import LoadResult, load_directory
from broker.agreements.model import Agreement
from broker.audit.entry import AgreementRef, AuditEntry, parse_leaf
from broker.audit.log import AuditLog, LogSigner
from broker.audit.tables import audit_entries
from broker.core.errors import NotFound
from broker.core.pseudonym import Pseudonym
from broker.db.migrate import upgrade
from broker.exchange.impact import logged_request
from broker.exchange.impact_jobs import ImpactJobs, Viewer, logged_requests
from tests.agreements.conftest import EXAMPLES, KNOWN_PARTIES, demo_store

REPO = Path(__file__).resolve().parents[2]
AGREEMENT = "ISA-SAFEGUARDING-CHILDREN"
DAY_MS = 86_400_000


def the_draft() -> Agreement:
    current = read_document(EXAMPLES / "isa" / f"{AGREEMENT}.yaml")
    assert isinstance(current, Agreement)
    content = current.content()
    content["version"] = 2
    roles = content["flows"][0]["conditions"]["requester_roles"]
    content["flows"][0]["conditions"]["requester_roles"] = [
        "school-nurse" if r == "gp" else r for r in roles
    ]
    return Agreement.model_validate(content)


def entry(now_ms: int, n: int, role: str, decision: str, **changes: object) -> AuditEntry:
    base = AuditEntry(
        kind="exchange",
        time_ms=now_ms - n * 60_000,
        client_id="r9z-ed-safeguarding",
        party_id="R9Z",
        user_id=f"db-user-{n}",
        user_role=role,
        agreement=AgreementRef(AGREEMENT, "1", ""),
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        subject=Pseudonym(f"fe{n:062x}", "v1"),
        requested_fields=("name.family",),
        released_fields=("name.family",) if decision == "allow" else (),
        decision=decision,
        case_reference=f"DB-CASE-{n}",
        justification="front desk check",
        details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def loaded() -> LoadResult:
    return load_directory(
        EXAMPLES,
        demo_store(),
        known_parties=KNOWN_PARTIES,
        now=dt.datetime.now(dt.UTC),
        demo=True,
    )


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    upgrade(engine)
    return AuditLog(engine, LogSigner("broker.test.example/impact", Ed25519PrivateKey.generate()))


def jobs_of(log: AuditLog, loaded: LoadResult, now_ms: int) -> ImpactJobs:
    return ImpactJobs(log.engine, log, REPO / "policies", lambda: loaded, lambda: now_ms)


def test_a_run_is_stored_logged_and_recounted(log: AuditLog, loaded: LoadResult) -> None:
    now_ms = int(time.time() * 1000)
    for n in range(1, 4):
        log.append(entry(now_ms, n, "school-nurse", "deny"))
    for n in range(4, 6):
        log.append(entry(now_ms, n, "gp", "allow"))
    log.append(entry(now_ms, 6, "safeguarding-nurse", "allow"))
    log.append(entry(now_ms, 40 * 24 * 60, "gp", "allow"))  # 40 days ago: outside the period
    jobs = jobs_of(log, loaded, now_ms)
    viewer = Viewer("R9Z", "r9z-governance", party_wide=False)
    job = jobs.start(viewer, the_draft(), 30)
    assert jobs.get(job, viewer)["status"] == "running"
    jobs.run(job, viewer, the_draft(), 30)
    outcome = jobs.get(job, viewer)
    assert outcome["status"] == "done", outcome
    totals = outcome["result"]["totals"]
    assert (totals["requests"], totals["newly_allowed"], totals["newly_denied"]) == (6, 3, 2)
    text = json.dumps(outcome)
    for personal in ("db-user-", "DB-CASE-", "fe0000", "front desk"):
        assert personal not in text
    with log.engine.connect() as conn:
        ids = list(conn.execute(select(audit_entries.c.exchange_id)).scalars())
        leaves = list(
            conn.execute(
                select(audit_entries.c.leaf).where(audit_entries.c.kind == "simulation")
            ).scalars()
        )
    assert not [i for i in ids if i in text]
    (simulation,) = [parse_leaf(bytes(leaf))[1] for leaf in leaves]
    assert simulation["details"]["impact"]["job"] == job
    assert simulation["details"]["impact"]["totals"]["newly_allowed"] == 3
    # Another party's officers, and a party-wide reader of a run it did not make.
    with pytest.raises(NotFound):
        jobs.get(job, Viewer("calderbridge-city-council", "ccc-governance", party_wide=False))


def test_the_cap_keeps_the_latest_requests(log: AuditLog) -> None:
    now_ms = int(time.time() * 1000)
    for n in range(1, 6):
        log.append(entry(now_ms, n, "gp", "allow"))
    found = logged_requests(log.engine, the_draft(), now_ms - DAY_MS, now_ms + 1, limit=2)
    assert [r.at for r in found] == sorted((r.at for r in found), reverse=True)
    assert len(found) == 2
    newest = dt.datetime.fromtimestamp((now_ms - 60_000) / 1000, dt.UTC)
    assert abs((found[0].at - newest).total_seconds()) < 1


def test_a_failed_run_is_stored_with_its_reason(log: AuditLog, loaded: LoadResult) -> None:
    content = the_draft().content()
    content["flows"][0]["dataset"] = "ccc.no-such-dataset"
    broken = Agreement.model_validate(content)
    jobs = jobs_of(log, loaded, int(time.time() * 1000))
    viewer = Viewer("R9Z", "r9z-governance", party_wide=False)
    job = jobs.start(viewer, broken, 7)
    jobs.run(job, viewer, broken, 7)
    outcome = jobs.get(job, viewer)
    assert outcome["status"] == "failed"
    assert "ccc.no-such-dataset" in outcome["error"]


def test_only_non_personal_facts_are_read_from_a_leaf() -> None:
    from broker.audit.entry import seal

    sealed = seal(entry(int(time.time() * 1000), 1, "gp", "allow"))
    body = json.loads(sealed.body)
    request = logged_request(body)
    assert request is not None
    assert request.case_reference is True
    shown = repr(request)
    for personal in ("db-user-1", "DB-CASE-1", body["exchange_id"], "fe0000", "front desk"):
        assert personal not in shown
