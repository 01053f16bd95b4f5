"""Fixtures: a migrated SQLite log per test, and (with BROKER_TEST_DATABASE_URL) a PostgreSQL one
in a schema of its own that is dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, text

import broker.audit.tables  # noqa: F401  (registers the audit tables on the shared metadata)
from broker.audit.entry import AgreementRef, AuditEntry, digest_released_record
from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.core.projection import WithheldField
from broker.core.pseudonym import PseudonymKey, pseudonymise
from broker.db.engine import build_engine, normalise_url
from broker.db.migrate import upgrade

ORIGIN = "broker.test.example/audit"
PSEUDONYM_KEY = PseudonymKey("v1", b"test-pseudonym-key-of-32-bytes!!")
PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL")


def make_entry(i: int, **overrides: object) -> AuditEntry:
    """A synthetic exchange (NHS test-range number, fictional people)."""
    fields: dict[str, object] = {
        "decision": "allow" if i % 3 else "deny",
        "client_id": "r9z-ed-safeguarding",
        "party_id": "R9Z",
        "user_id": f"ed-nurse-{i % 17}",
        "user_role": "safeguarding-nurse",
        "agreement": AgreementRef("ISA-SAFEGUARDING-CHILDREN", "3", "sha256:" + "ab" * 32),
        "purpose": "child-protection-check",
        "lawful_basis": ("UK GDPR 6(1)(e)", "UK GDPR 9(2)(h)"),
        "dataset": "ccc.child-protection",
        "subject": pseudonymise(PSEUDONYM_KEY, "nhs_number", "9990000018"),
        "requested_fields": ("name.family", "child_protection_plan.status"),
        "released_fields": ("child_protection_plan.status",),
        "withheld_fields": (WithheldField("name.family", "not in the agreement"),),
        "reasons": ("flow ccc.child-protection permits child_protection_plan.status",),
        "break_glass": i % 10 == 0,
        "justification": "child attended ED with injuries" if i % 10 == 0 else None,
        "case_reference": f"ED-2026-11-{i:04d}",
        "obligations": ({"type": "notify-provider", "party": "calderbridge-city-council"},),
        "policy_revision": "rev-42",
        "source_outcome": "ok",
        "released": digest_released_record({"child_protection_plan": {"status": "active"}}),
        "latency_us": 1200 + i,
        "time_ms": 1_795_900_000_000 + i * 1000,
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def _sqlite(tmp_path: Path) -> Engine:
    engine = build_engine("sqlite:///" + str(tmp_path / "audit.db"), pool_size=4)
    upgrade(engine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = _sqlite(tmp_path)
    yield e
    e.dispose()


@pytest.fixture
def signer() -> LogSigner:
    return LogSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def log(engine: Engine, signer: LogSigner) -> AuditLog:
    return AuditLog(engine, signer, policy=CheckpointPolicy(every_entries=10, every_seconds=3600))


@pytest.fixture
def filled(log: AuditLog) -> AuditLog:
    """A log of 57 entries with checkpoints every 10."""
    for i in range(57):
        log.append(make_entry(i))
    return log


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL; skipped when BROKER_TEST_DATABASE_URL is unset."""
    if not PG_URL:
        pytest.skip("BROKER_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    schema = "audit_test_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{normalise_url(PG_URL)}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_engine_factory(pg_url: str) -> Callable[[], Engine]:
    state = {"migrated": False}

    def make() -> Engine:
        engine = build_engine(pg_url, pool_size=8)
        if not state["migrated"]:
            upgrade(engine)
            state["migrated"] = True
        return engine

    return make
