"""Fixtures: a private copy of the example agreements, the demo keys, and a fixed clock."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from broker.agreements.loader import LoadResult, load_directory
from broker.agreements.signing import PartyKey, TrustedKey, load_private_key, thumbprint
from broker.agreements.store import MemoryAgreementStore, read_jwks_dir
from demo.parties import DEMO_PARTIES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "agreements" / "examples"
DEMO_KEYS = REPO / "agreements" / "demo-keys"
KNOWN_PARTIES = frozenset(p.id for p in DEMO_PARTIES)
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of agreements/examples that a test may tamper with."""
    target = tmp_path / "agreements"
    shutil.copytree(EXAMPLES, target)
    return target


def demo_store() -> MemoryAgreementStore:
    store = MemoryAgreementStore()
    for party, _file, jwk in read_jwks_dir(EXAMPLES / "keys"):
        kid = thumbprint(jwk)
        store.keys[kid] = TrustedKey(kid, party, jwk)
    return store


@pytest.fixture
def store() -> MemoryAgreementStore:
    return demo_store()


def demo_key(party: str) -> PartyKey:
    return load_private_key((DEMO_KEYS / f"{party}.pem").read_bytes())


Loader = Callable[..., LoadResult]


@pytest.fixture
def load(root: Path, store: MemoryAgreementStore) -> Loader:
    """Load ``root`` in demo mode at NOW (keyword arguments override)."""

    def run(**overrides: object) -> LoadResult:
        kwargs: dict[str, object] = {
            "store": store,
            "known_parties": KNOWN_PARTIES,
            "now": NOW,
            "demo": True,
        }
        kwargs.update(overrides)
        return load_directory(root, **kwargs)  # type: ignore[arg-type]

    return run


def status_of(result: LoadResult, agreement_id: str) -> tuple[str, str]:
    """(status, all reasons joined) of one agreement in a load result."""
    for item in result.agreements:
        if item.status.agreement_id == agreement_id:
            return item.status.status, " | ".join(item.status.reasons)
    raise AssertionError(f"{agreement_id} not loaded")
