"""The pure status function: precedence of statuses, dates in UK local time, change naming."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from broker.agreements.loader import read_signatures
from broker.agreements.model import Agreement
from broker.agreements.parsing import Problem, parse_document
from broker.agreements.status import (
    RevocationRecord,
    VersionSeen,
    changed_places,
    evaluate,
    uk_date,
)
from tests.agreements.conftest import EXAMPLES, NOW, demo_store

PATH = EXAMPLES / "isa" / "ISA-HOSPITAL-DISCHARGE.yaml"


def _agreement() -> Agreement:
    doc = parse_document(PATH.read_text(), str(PATH))
    assert isinstance(doc, Agreement)
    return doc


DOC = _agreement()
SIGS = read_signatures(PATH)
TRUST = demo_store().trust_snapshot()


def _status(**overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "file": str(PATH),
        "agreement": DOC,
        "problems": (),
        "signatures": SIGS,
        "trust": TRUST,
        "revocations": (),
        "highest_seen": {},
        "now": NOW,
    }
    kwargs.update(overrides)
    return evaluate(**kwargs).status


def _revocation(version: int) -> RevocationRecord:
    return RevocationRecord(DOC.id, version, "R9Z", "ended", NOW, "sha256:" + "0" * 64)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, "active", id="active"),
        pytest.param({"signatures": {}}, "draft", id="no-signatures"),
        pytest.param({"revocations": [_revocation(1)]}, "revoked", id="revoked"),
        pytest.param(
            {"revocations": [_revocation(1)], "problems": [Problem("f", "x", "bad")]},
            "revoked",
            id="revoked-beats-invalid",
        ),
        pytest.param({"problems": [Problem("f", "x", "bad")]}, "invalid", id="invalid"),
        pytest.param(
            {"highest_seen": {DOC.id: VersionSeen(DOC.id, 2, "sha256:" + "1" * 64)}},
            "invalid",
            id="superseded",
        ),
        pytest.param(
            {"highest_seen": {DOC.id: VersionSeen(DOC.id, 1, DOC.digest())}},
            "active",
            id="same-version-same-digest",
        ),
        pytest.param(
            {"agreement": None, "problems": [Problem("f", "", "unreadable")]},
            "invalid",
            id="unreadable",
        ),
        pytest.param(
            {"now": dt.datetime(2029, 3, 31, 23, 30, tzinfo=dt.UTC)},
            "expired",
            id="expired-at-uk-midnight-bst",
        ),
        pytest.param(
            {"now": dt.datetime(2029, 3, 31, 22, 30, tzinfo=dt.UTC)},
            "active",
            id="last-uk-evening-before-expiry",
        ),
    ],
)
def test_status(overrides: dict[str, Any], expected: str) -> None:
    assert _status(**overrides) == expected


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        uk_date(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({"a": 1}, {"a": 2}, ["a: 1 -> 2"], id="changed"),
        pytest.param({"a": [1]}, {"a": [1, 2]}, ["a[1]: added 2"], id="added"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, ["b: removed 2"], id="removed"),
        pytest.param({"a": {"b": "x"}}, {"a": {"b": "x"}}, [], id="same"),
    ],
)
def test_changed_places(old: Any, new: Any, expected: list[str]) -> None:
    assert changed_places(old, new) == expected
