"""Benchmark: canonical digest, detached JWS sign/verify, and loading a directory of agreements.

    PYTHONPATH=. python bench/agreements_load.py          # short run (a few seconds)
    PYTHONPATH=. python bench/agreements_load.py --full   # more rounds, 500 agreements

Prints median and p99 per operation in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from broker.agreements.loader import load_directory, write_signature
from broker.agreements.model import Agreement
from broker.agreements.parsing import parse_document
from broker.agreements.signing import (
    TrustedKey,
    TrustSnapshot,
    load_private_key,
    public_jwk,
    sign_detached,
    verify_detached,
)
from broker.agreements.store import MemoryAgreementStore
from broker.core.canonical import digest
from demo.parties import DEMO_PARTIES

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "agreements" / "examples"
NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def measure(name: str, rounds: int, fn: Callable[[], object]) -> None:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{name:<44} median {statistics.median(times):8.3f} ms   p99 {p99:8.3f} ms   n={rounds}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    rounds = 2000 if args.full else 200
    copies = 500 if args.full else 50

    path = EXAMPLES / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
    text = path.read_text()
    doc = parse_document(text, str(path))
    assert isinstance(doc, Agreement)
    key = load_private_key((REPO / "agreements" / "demo-keys" / "R9Z.pem").read_bytes())
    trust = TrustSnapshot.of([TrustedKey(key.thumbprint(), "R9Z", public_jwk(key))])
    content = doc.canonical_bytes()
    token = sign_detached(content, key)

    measure("parse + validate YAML (one agreement)", rounds, lambda: parse_document(text, "x"))
    measure("content + RFC 8785 bytes + sha256 (uncached)", rounds, lambda: digest(doc.content()))
    measure("sign (Ed25519 detached JWS)", rounds, lambda: sign_detached(content, key))
    measure("verify one signature", rounds, lambda: verify_detached(content, token, "R9Z", trust))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "agreements"
        shutil.copytree(EXAMPLES, root)
        keys = {
            p.id: load_private_key((REPO / "agreements" / "demo-keys" / f"{p.id}.pem").read_bytes())
            for p in DEMO_PARTIES
        }
        for i in range(copies):
            copy = root / "isa" / f"ISA-BENCH-{i:04d}.yaml"
            copy.write_text(text.replace("id: ISA-SAFEGUARDING-CHILDREN", f"id: ISA-BENCH-{i:04d}"))
            parsed = parse_document(copy.read_text(), str(copy))
            assert isinstance(parsed, Agreement)
            for party in parsed.parties:
                write_signature(
                    copy, party.id, sign_detached(parsed.canonical_bytes(), keys[party.id])
                )
        store = MemoryAgreementStore()
        for party_id, k in keys.items():
            store.keys[k.thumbprint()] = TrustedKey(k.thumbprint(), party_id, public_jwk(k))
        known = {p.id for p in DEMO_PARTIES}

        def load() -> None:
            result = load_directory(root, store, known_parties=known, now=NOW, demo=True)
            assert len(result.active()) == copies + 5

        measure(
            f"load_directory ({copies + 5} agreements, 11 datasets)", 5 if args.full else 3, load
        )


if __name__ == "__main__":
    main()
