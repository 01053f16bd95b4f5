"""Shared set-up for console tests: a demo broker with seeded audit entries, and sign-in."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from broker.audit.entry import AgreementRef, AuditEntry, digest_released_record
from broker.audit.log import AuditLog
from broker.core.projection import WithheldField
from broker.core.pseudonym import PseudonymKeyring
from broker.pseudonym_keys import load_pseudonym_keys
from demo.parties import COUNCIL, HOSPITAL
from tests.support import LiveBroker, live_broker

#: Test-range NHS numbers with valid check digits (999 prefix, Modulus 11).
CHILD_NHS = "9990000018"
OTHER_NHS = "9990000026"
REPO = Path(__file__).resolve().parents[2]

PASSWORDS = {
    "council-dpo": "demo-oversight-lantern",
    "r9z-caldicott": "demo-guardian-harbour",
    "council-isa-admin": "demo-agreements-maple",
    "internal-auditor": "demo-audit-compass",
}


@dataclass
class Seeded:
    hospital_bg: str
    """A break-glass exchange by the hospital under the safeguarding agreement."""
    hospital_allow: str
    council_only: str
    """An exchange between council services under ISA-PROOF-REUSE (the hospital is no party)."""


def safeguarding_entry(keyring: PseudonymKeyring, **overrides: object) -> AuditEntry:
    values: dict[str, object] = {
        "kind": "exchange",
        "client_id": "r9z-ed-safeguarding",
        "party_id": HOSPITAL,
        "user_id": "hospital-ed-nurse-17",
        "user_role": "safeguarding-nurse",
        "agreement": AgreementRef("ISA-SAFEGUARDING-CHILDREN", "1", "sha256:" + "ab" * 32),
        "purpose": "child-protection-check",
        "lawful_basis": ("UK GDPR 6(1)(e)", "UK GDPR 9(2)(g)", "DPA 2018 Sch 1 para 18"),
        "dataset": "ccc.child-protection",
        "subject": keyring.pseudonymise("nhs_number", CHILD_NHS),
        "requested_fields": ("name.family", "child_protection_plan.status"),
        "released_fields": ("name.family", "child_protection_plan.status"),
        "decision": "allow",
        "case_reference": "ED-2026-11-0042",
        "policy_revision": "rev-1",
        "source_outcome": "ok",
        "released": digest_released_record({"name": {"family": "Example"}}),
        "latency_us": 1800,
    }
    values.update(overrides)
    return AuditEntry(**values)  # type: ignore[arg-type]


def seed(log: AuditLog, keyring: PseudonymKeyring) -> Seeded:
    allow = log.append(safeguarding_entry(keyring))
    bg = log.append(
        safeguarding_entry(
            keyring,
            break_glass=True,
            justification="unconscious child, no guardian reachable",
            withheld_fields=(WithheldField("address.line1", "not permitted"),),
            details={"mode": "fetch", "user_verified": False, "user_assurance": "asserted"},
        )
    )
    council = log.append(
        safeguarding_entry(
            keyring,
            client_id="ccc-housing-options",
            party_id=COUNCIL,
            user_id="housing-officer-3",
            user_role="housing-officer",
            agreement=AgreementRef("ISA-PROOF-REUSE", "1", "sha256:" + "cd" * 32),
            purpose="homelessness-assessment",
            dataset="ccc.proof-documents",
            subject=keyring.pseudonymise("nhs_number", OTHER_NHS),
            released_fields=("proof.identity.verified",),
        )
    )
    log.append(safeguarding_entry(keyring, decision="deny", released_fields=(), released=None))
    for i in range(40):  # other traffic, so that proofs have a few levels
        log.append(
            safeguarding_entry(
                keyring,
                client_id="ccc-school-admissions",
                party_id=COUNCIL,
                agreement=AgreementRef("ISA-SCHOOL-ADMISSIONS", "1", "sha256:" + "ef" * 32),
                purpose="school-admission-address-check",
                dataset="ccc.council-tax",
                subject=keyring.pseudonymise("nhs_number", OTHER_NHS),
                user_id=f"admissions-officer-{i % 3}",
            )
        )
    log.checkpoint_now()
    return Seeded(bg.exchange_id, allow.exchange_id, council.exchange_id)


@contextmanager
def console_broker(
    tmp_path: Path, database_url: str | None = None, **extra: object
) -> Iterator[tuple[LiveBroker, Seeded]]:
    """A demo broker with seeded entries (on SQLite unless ``database_url`` says); every test
    signs in from 127.0.0.1, so the per-address sign-in limit is raised unless ``extra`` sets
    it."""
    root = tmp_path / "agreements"
    shutil.copytree(REPO / "agreements" / "examples", root)
    extra.setdefault("console_sign_in_attempts_per_window", 1000)
    with live_broker(
        tmp_path,
        database_url or f"sqlite:///{tmp_path / 'b.db'}",
        demo=True,
        agreements_dir=root,
        **extra,
    ) as broker:
        deadline = time.monotonic() + 10
        while broker.services.policy_runtime.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
        yield broker, seed(broker.services.audit, keyring)


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(url: str, username: str, password: str | None = None) -> httpx.Client:
    """An HTTP client signed in as ``username`` (cookies kept)."""
    client = httpx.Client(base_url=url, timeout=10.0)
    page = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={
            "username": username,
            "password": password or PASSWORDS[username],
            "csrf": csrf_of(page.text),
            "next": "/console/",
        },
    )
    assert response.status_code == 303, response.text
    return client
