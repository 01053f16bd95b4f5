"""Render time of every console page with a large audit log (target: under 300 ms each).

    .venv/bin/python -m bench.console_bench            # 100,000 entries, 5 runs
    .venv/bin/python -m bench.console_bench --full     # 100,000 entries, 30 runs
    .venv/bin/python -m bench.console_bench --entries 20000

Synthetic entries are sealed and committed straight through ``broker.audit.store.commit_batch``
in batches of 5,000 (one transaction each), spread over the last 12 months across the demo
agreements, 10% denied, 1% break-glass. Pages are requested in-process (Starlette TestClient),
signed in as the council DPO (oversight: the widest scope) and as the hospital's Caldicott
Guardian (party-scoped). Each page view also appends its own audit-read entry, as in production.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from broker.app import create_app
from broker.audit import store
from broker.audit.entry import AgreementRef, AuditEntry, digest_released_record, seal
from broker.audit.log import AuditLog
from broker.container import build_services
from broker.core.nhs_number import test_number
from broker.core.pseudonym import PseudonymKeyring
from broker.observability import configure_logging
from broker.pseudonym_keys import load_pseudonym_keys
from broker.settings import Settings
from demo import bootstrap
from demo.parties import COUNCIL, HOSPITAL

AGREEMENTS = [
    ("ISA-SAFEGUARDING-CHILDREN", HOSPITAL, "r9z-ed-safeguarding", "ccc.child-protection"),
    ("ISA-HOSPITAL-DISCHARGE", COUNCIL, "ccc-adult-social-care", "r9z.discharge-summary"),
    ("ISA-PROOF-REUSE", COUNCIL, "ccc-housing-options", "ccc.proof-documents"),
    ("ISA-SCHOOL-ADMISSIONS", COUNCIL, "ccc-school-admissions", "ccc.council-tax"),
    ("ISA-SPD-FRAUD", COUNCIL, "ccc-revenues-benefits", "ccc.electoral-register"),
]
FIELDS = ["name.family", "name.given", "date_of_birth", "child_protection_plan.status", "address"]
YEAR_MS = 365 * 86_400_000


def fill(log: AuditLog, count: int, keyring: PseudonymKeyring) -> None:
    """Append ``count`` synthetic exchanges over the past year, 5,000 per transaction."""
    rng = random.Random(7)
    now = int(time.time() * 1000)
    subjects = [keyring.pseudonymise("nhs_number", test_number(i)) for i in range(1000)]
    salt = bytes(16)
    batch = []
    for i in range(count):
        agreement, party, client, dataset = AGREEMENTS[i % len(AGREEMENTS)]
        deny = rng.random() < 0.10
        released = () if deny else tuple(rng.sample(FIELDS, 3))
        entry = AuditEntry(
            time_ms=now - YEAR_MS + (YEAR_MS * i) // count,
            client_id=client,
            party_id=party,
            user_id=f"user-{i % 300}",
            user_role="officer",
            agreement=AgreementRef(agreement, "1", "sha256:" + "ab" * 32),
            purpose="purpose",
            lawful_basis=("UK GDPR 6(1)(e)",),
            dataset=dataset,
            subject=subjects[i % len(subjects)],
            requested_fields=tuple(FIELDS[:3]),
            released_fields=released,
            decision="deny" if deny else "allow",
            break_glass=rng.random() < 0.01,
            justification="urgent" if i % 100 == 0 else None,
            released=None if deny else digest_released_record({"n": i}, salt),
            latency_us=1500,
        )
        batch.append(seal(entry))
        if len(batch) == 5000 or i == count - 1:
            store.commit_batch(
                log.engine,
                batch,
                now_ms=now,
                sign=log.signer.sign,
                policy=store.CheckpointPolicy(every_entries=10**9, every_seconds=10**9),
            )
            batch = []
    log.checkpoint_now()


def sign_in(client: TestClient, username: str, password: str) -> None:
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="30 runs per page")
    args = parser.parse_args()
    runs = 30 if args.full else args.runs
    configure_logging("WARNING")  # per-request log lines would drown the figures
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "agreements"
        shutil.copytree(Path(__file__).resolve().parents[1] / "agreements" / "examples", root)
        settings = Settings(
            database_url=f"sqlite:///{tmp / 'b.db'}",
            keys_dir=tmp / "keys",
            pseudonym_key_file=tmp / "keys" / "pseudonym.key",
            agreements_dir=root,
            demo=True,
            log_json=True,
        )
        bootstrap.prepare(settings, tmp / "demo-keys")
        services = build_services(settings)
        services.policy_runtime.refresh()
        keyring = load_pseudonym_keys(settings.pseudonym_key_file)
        t0 = time.perf_counter()
        fill(services.audit, args.entries, keyring)
        print(f"appended {args.entries} entries in {time.perf_counter() - t0:.1f} s")
        app = create_app(settings, services)
        with TestClient(app) as client:
            with services.engine.connect() as conn:
                bg = conn.exec_driver_sql(
                    "SELECT exchange_id FROM audit_entries WHERE break_glass = 1 AND"
                    " agreement_id = 'ISA-SAFEGUARDING-CHILDREN' ORDER BY idx LIMIT 1"
                ).scalar_one()
                old = conn.exec_driver_sql(
                    "SELECT exchange_id FROM audit_entries ORDER BY idx LIMIT 1"
                ).scalar_one()
            pages = [
                ("home", "GET", "/console/", None),
                ("exchanges", "GET", "/console/exchanges", None),
                (
                    "exchanges: deny, one agreement",
                    "GET",
                    "/console/exchanges?agreement=ISA-SPD-FRAUD&decision=deny",
                    None,
                ),
                ("exchanges: break-glass only", "GET", "/console/exchanges?break_glass=1", None),
                ("exchanges: oldest first", "GET", "/console/exchanges?order=oldest", None),
                (
                    "exchanges: time range",
                    "GET",
                    "/console/exchanges?from=2026-03-01&to=2026-03-31",
                    None,
                ),
                ("exchange + proof (oldest entry)", "GET", f"/console/exchanges/{old}", None),
                ("agreements", "GET", "/console/agreements", None),
                ("agreement usage", "GET", "/console/agreements/ISA-SAFEGUARDING-CHILDREN", None),
                ("break-glass queue", "GET", "/console/break-glass", None),
                ("integrity", "GET", "/console/integrity", None),
                ("report (all agreements, 12 months)", "GET", "/console/reports", None),
                ("report CSV", "GET", "/console/reports.csv", None),
                ("access report", "POST", "/console/access-report", {"nhs": test_number(5)}),
            ]
            for who, password in (
                ("council-dpo", "demo-oversight-lantern"),
                ("r9z-caldicott", "demo-guardian-harbour"),
            ):
                client.cookies.clear()
                sign_in(client, who, password)
                home = client.get("/console/")
                csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
                assert csrf
                print(f"\n{who}: {'page':<40} {'median ms':>10} {'p99/max ms':>11}")
                for name, method, path, form in [
                    *pages,
                    ("exchange (break-glass)", "GET", f"/console/exchanges/{bg}", None),
                ]:
                    times = []
                    for _ in range(runs):
                        t = time.perf_counter()
                        if method == "GET":
                            r = client.get(path)
                        else:
                            r = client.post(path, data={**(form or {}), "csrf": csrf.group(1)})
                        times.append((time.perf_counter() - t) * 1000)
                        assert r.status_code == 200, (path, r.status_code, r.text[:300])
                    times.sort()
                    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                    flag = "" if statistics.median(times) < 300 else "  OVER 300 ms"
                    print(f"  {name:<46} {statistics.median(times):>8.1f} {p99:>11.1f}{flag}")
        services.close()


if __name__ == "__main__":
    main()
