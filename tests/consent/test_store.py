"""The consent store: SQL (SQLite, and PostgreSQL when configured) and in memory behave alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from broker.consent.store import (
    ConsentConflict,
    ConsentNotFound,
    ConsentStore,
    MemoryConsentStore,
    SqlConsentStore,
)
from broker.db import migrate
from tests.consent.factories import T0, record


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, engine: Engine) -> Iterator[ConsentStore]:
    if request.param == "memory":
        yield MemoryConsentStore()
        return
    migrate.upgrade(engine)
    yield SqlConsentStore(engine)


def test_add_get_and_list_by_any_pseudonym(store: ConsentStore) -> None:
    first = record(id="a", document_types=("income", "identity"))
    second = record(id="b", subject_pseudonym="cd" * 32, recorded_at_ms=T0 + 1)
    other = record(id="c", subject_pseudonym="ef" * 32)
    for r in (first, second, other):
        store.add(r)
    assert store.get("a") == first
    assert store.for_subject(["ab" * 32, "cd" * 32]) == [first, second]
    assert store.for_subject([]) == []


def test_withdraw_once(store: ConsentStore) -> None:
    store.add(record(id="a"))
    withdrawn = store.withdraw("a", at_ms=T0 + 9, client_id="ccc-citizen-portal", reason=None)
    assert (withdrawn.status, withdrawn.withdrawn_at_ms) == ("inactive", T0 + 9)
    assert store.get("a") == withdrawn
    with pytest.raises(ConsentConflict, match="already withdrawn"):
        store.withdraw("a", at_ms=T0 + 10, client_id="x", reason=None)


def test_unknown_ids(store: ConsentStore) -> None:
    with pytest.raises(ConsentNotFound, match="no consent"):
        store.get("nope")
    with pytest.raises(ConsentNotFound, match="no consent"):
        store.withdraw("nope", at_ms=T0, client_id="x", reason=None)
