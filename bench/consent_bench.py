"""Cost of the consent check the exchange pipeline makes on every consent-bound request.

    .venv/bin/python -m bench.consent_bench [--full]

SQLite on a temporary file with ``--records`` consents (one per subject, 1 in 10 withdrawn):
``ConsentService.check`` for a random subject (indexed read of the subject's records + the pure
rule), and the access report for a subject with 20 exchanges among ``--exchanges`` in the log.
Default run is short; ``--full`` uses 100 000 consents and 20 000 log entries.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.stats import summary
from broker.attestation.keys import load_or_create_attestation_key
from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.log import AuditLog, LogSigner
from broker.audit.memory import MemoryAuditLog
from broker.consent.model import ConsentQuery, ConsentRecord
from broker.consent.service import ConsentService
from broker.consent.store import SqlConsentStore
from broker.core.pseudonym import PseudonymKeyring, generate_key
from broker.db import migrate
from broker.db.engine import build_engine
from broker.subjects.report import HoldRules, build_report

COUNCIL = "calderbridge-city-council"
T0 = 1_790_000_000_000


class _Everyone:
    """Every source holds everyone (the bench measures the consent check, not recording)."""

    def known(self, dataset: str, subject: object) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    records = 100_000 if args.full else 5_000
    exchanges = 20_000 if args.full else 2_000
    ring = PseudonymKeyring((generate_key("v1"),))
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(engine)
        store = SqlConsentStore(engine)
        base = ConsentRecord(
            id="",
            status="active",
            agreement_id="ISA-PROOF-REUSE",
            agreement_version=1,
            subject_type="person_id",
            subject_pseudonym="",
            subject_key_version="v1",
            from_party=COUNCIL,
            to_party=COUNCIL,
            purpose="homelessness-assessment",
            datasets=("ccc.proof-documents",),
            document_types=(),
            period_start_ms=T0,
            period_end_ms=T0 + 10**12,
            collection_method="written",
            recorded_by_name="Priya Marsh",
            recorded_by_role=None,
            recorder_party=COUNCIL,
            recorder_client="ccc-revenues-benefits",
            recorded_at_ms=T0,
        )
        subjects = [f"P{i:07d}" for i in range(records)]
        pseudonyms = [ring.pseudonymise("person_id", s).value for s in subjects]
        for i, p in enumerate(pseudonyms):
            withdrawn = i % 10 == 0
            store.add(
                dataclasses.replace(
                    base,
                    id=f"c-{i}",
                    subject_pseudonym=p,
                    status="inactive" if withdrawn else "active",
                    withdrawn_at_ms=T0 + 1 if withdrawn else None,
                )
            )
        service = ConsentService(
            store=store,
            audit=MemoryAuditLog(),
            pseudonyms=ring,
            agreements=list,
            signer=load_or_create_attestation_key(Path(tmp)),
            issuer="bench",
            clock=time.time,
            subjects=_Everyone(),
        )
        now = dt.datetime.fromtimestamp(T0 / 1000 + 60, dt.UTC)
        rng = random.Random(7)
        samples = []
        for _ in range(args.samples):
            p = pseudonyms[rng.randrange(records)]
            query = ConsentQuery(
                COUNCIL,
                COUNCIL,
                "homelessness-assessment",
                "ccc.proof-documents",
                subject_pseudonyms=(p,),
            )
            start = time.perf_counter()
            service.status(query, now)
            samples.append(time.perf_counter() - start)
        print(f"consent status ({records} consents):      {summary(samples)}")

        log = AuditLog(engine, LogSigner("bench/audit", Ed25519PrivateKey.generate()))
        ref = AgreementRef("ISA-PROOF-REUSE", "1", "sha256:" + "0" * 64)
        for i in range(exchanges):
            log.append(
                AuditEntry(
                    kind="exchange",
                    time_ms=T0 + i,
                    party_id=COUNCIL,
                    agreement=ref,
                    purpose="homelessness-assessment",
                    dataset="ccc.proof-documents",
                    subject=ring.pseudonymise("person_id", subjects[i % (exchanges // 20)]),
                    decision="allow",
                )
            )
        holds = HoldRules({})
        report_samples = []
        for _ in range(max(50, args.samples // 20)):
            p = pseudonyms[rng.randrange(exchanges // 20)]
            start = time.perf_counter()
            build_report(engine, pseudonyms=[p], view="subject", holds=holds, now_ms=T0 + 10**9)
            report_samples.append(time.perf_counter() - start)
        print(f"access report (20 of {exchanges} entries): {summary(report_samples)}")
        engine.dispose()


if __name__ == "__main__":
    main()
