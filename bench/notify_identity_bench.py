"""What provider notifications and ID token checks add to one exchange.

    PYTHONPATH=. /work/venv/bin/python bench/notify_identity_bench.py          # short (~10 s)
    PYTHONPATH=. /work/venv/bin/python bench/notify_identity_bench.py --full   # more samples

1. A durable audit append (SQLite WAL, synchronous=FULL, one thread) without and with the outbox
   row written in the same transaction (subject sealed): the added cost on the exchange path.
2. ``verify_id_token`` with the provider's keys cached (ES256 and RS256).
3. Delivery throughput: N queued notifications posted, signed, to the demo receiver on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from adapters.demo.runtime import ServerThread
from adapters.demo.webhook_receiver import PATH, DemoWebhookReceiver
from bench.stats import summary
from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.log import AuditLog, LogSigner
from broker.auth.registry import Registry
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import PseudonymKey, PseudonymKeyring, pseudonymise
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.demo.parties import COUNCIL, HOSPITAL
from broker.identity.jwks import JwksCache
from broker.identity.service import IdentityProviders
from broker.identity.store import IdentityProviderStore
from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.demo import register_demo_webhook
from broker.notify.outbox import OutboxStore, ProviderNotice
from broker.notify.sealing import SubjectSealer
from broker.notify.service import Notifications
from broker.notify.webhooks import WebhookRegistry
from broker.observability import configure_logging

KEY = PseudonymKey("v1", b"bench-pseudonym-key-of-32-bytes!")
CHILD = SubjectId("nhs_number", "9990000018")
ISSUER = "https://login.r9z.nhs.example"


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        decision="allow",
        client_id="r9z-ed-safeguarding",
        party_id=HOSPITAL,
        user_id="hospital-ed-nurse-17",
        user_role="safeguarding-nurse",
        agreement=AgreementRef("ISA-SAFEGUARDING-CHILDREN", "3", "sha256:" + "ab" * 32),
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        subject=pseudonymise(KEY, CHILD.type, CHILD.value),
        requested_fields=("child_protection_plan.status",),
        released_fields=("child_protection_plan.status",),
        case_reference=f"ED-2026-11-{i:04d}",
        time_ms=int(time.time() * 1000),
    )


def notice(exchange_id: str) -> ProviderNotice:
    return ProviderNotice(
        exchange_id=exchange_id,
        provider_party=COUNCIL,
        occurred_at_ms=int(time.time() * 1000),
        agreement_id="ISA-SAFEGUARDING-CHILDREN",
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        requesting_party=HOSPITAL,
        requesting_client="r9z-ed-safeguarding",
        summary="bench",
        subject_pseudonym=pseudonymise(KEY, CHILD.type, CHILD.value),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING", json_lines=True)
    appends, checks, deliveries = (3000, 20000, 2000) if args.full else (400, 3000, 300)
    root = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    servers = ServerThread()
    try:
        engine = build_engine(f"sqlite:///{root / 'b.db'}", pool_size=4)
        upgrade(engine)
        registry = Registry(engine)
        registry.add_party(COUNCIL, "Council", "council", None, actor="bench")
        registry.add_party(HOSPITAL, "Hospital", "nhs", "R9Z", actor="bench")
        log = AuditLog(engine, LogSigner("bench.example/audit", Ed25519PrivateKey.generate()))
        sealer = SubjectSealer(PseudonymKeyring((KEY,)))
        store, hooks = OutboxStore(engine), WebhookRegistry(engine)
        worker = DeliveryWorker(store, hooks, DeliveryPolicy(batch=50), sealer=sealer)
        notifications = Notifications(store, hooks, worker, sealer)

        print("1. durable audit append (SQLite, one thread; runs interleaved)")
        plain: list[float] = []
        with_row: list[float] = []
        for i in range(appends * 2):
            e = entry(i)
            extras = [notifications.writer(notice(e.exchange_id), subject=CHILD)] if i % 2 else []
            t0 = time.perf_counter()
            log.append(e, extras=extras)
            (with_row if i % 2 else plain).append(time.perf_counter() - t0)
        print(f"   without outbox row {summary(plain)}")
        print(f"   with outbox row    {summary(with_row)}")

        print("2. verify_id_token (keys cached)")
        idp_store = IdentityProviderStore(engine)
        idp = IdentityProviders(idp_store, JwksCache(fetcher=None))  # type: ignore[arg-type]
        for alg, key in (
            ("ES256", ECKey.generate_key("P-256", private=True)),
            ("RS256", RSAKey.generate_key(2048, private=True)),
        ):
            jwk = dict(key.as_dict(private=False)) | {"kid": "k1"}
            if idp_store.get(HOSPITAL) is not None:
                idp_store.remove(HOSPITAL, actor="bench")
            idp_store.add(HOSPITAL, ISSUER, actor="bench", jwks={"keys": [jwk]})
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": "r9z-ed-safeguarding", "sub": "nurse", "role": "r"}
            token = jwt.encode(
                {"alg": alg, "kid": "k1"}, claims | {"iat": now, "exp": now + 300}, key
            )
            samples = []
            for _ in range(checks):
                t0 = time.perf_counter()
                idp.verify_id_token(HOSPITAL, "r9z-ed-safeguarding", token, now)
                samples.append(time.perf_counter() - t0)
            print(f"   {alg} {summary(samples)}")

        print("3. delivery to the demo receiver on loopback")
        receiver = DemoWebhookReceiver()
        receiver.url = servers.serve(receiver.app()) + PATH
        register_demo_webhook(hooks, receiver.url, receiver.secret)
        backlog = store.counts()["pending"]
        t0 = time.perf_counter()
        delivered = 0
        while delivered < min(backlog, deliveries):
            delivered += asyncio.run(worker.run_once())
        elapsed = time.perf_counter() - t0
        print(
            f"   {delivered} notifications delivered in {elapsed:.2f} s: "
            f"{delivered / elapsed:.0f}/s (batches of 50, one worker)"
        )
        engine.dispose()
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
