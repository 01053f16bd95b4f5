"""Every key committed to the repository is on the published list, and refused outside the demo."""

from __future__ import annotations

import warnings
from pathlib import Path

from joserfc.jwk import ECKey, OKPKey, RSAKey

from broker.core.published_keys import (
    PUBLISHED_KEY_THUMBPRINTS,
    is_published,
    published_among,
    refused_thumbprints,
)

ROOT = Path(__file__).resolve().parents[2]


def _thumbprint(pem: bytes) -> str:
    for kind in (OKPKey, ECKey, RSAKey):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return kind.import_key(pem).thumbprint()
        except Exception:  # noqa: S112 - try the next key type
            continue
    raise AssertionError("not a key joserfc reads")


def committed_pems() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.pem") if not {".venv", "var"} & set(p.parts))


def test_every_committed_key_is_published() -> None:
    pems = committed_pems()
    assert len(pems) >= 24  # 6 agreement signing keys, 14 clients, 4 identity providers
    found = {p.relative_to(ROOT).as_posix(): _thumbprint(p.read_bytes()) for p in pems}
    missing = sorted(path for path, t in found.items() if t not in PUBLISHED_KEY_THUMBPRINTS)
    assert missing == []
    # and nothing listed that is no longer committed (a stale entry would hide a typo)
    assert set(found.values()) == PUBLISHED_KEY_THUMBPRINTS


def test_refused_outside_demo_only() -> None:
    some = next(iter(PUBLISHED_KEY_THUMBPRINTS))
    assert is_published(some)
    assert not is_published("not-a-thumbprint")
    assert refused_thumbprints(demo=False) == PUBLISHED_KEY_THUMBPRINTS
    assert refused_thumbprints(demo=True) == frozenset()
    assert published_among([some, "other"], demo=False) == [some]
    assert published_among([some], demo=True) == []
