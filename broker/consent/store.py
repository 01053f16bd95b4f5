"""Where consent records live: a small port, its SQL implementation and an in-memory one.

Both refuse to withdraw twice (:class:`ConsentConflict`) and raise :class:`ConsentNotFound` for
an unknown id. The SQL store translates every database error into :class:`ConsentStoreUnavailable`
(fail closed: a consent check that cannot read the store is not "none", it is an error).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from broker.consent.model import ConsentRecord
from broker.consent.tables import consents
from broker.core.errors import Conflict, NotFound, Unavailable


class ConsentNotFound(NotFound):
    title = "Consent not found"


class ConsentConflict(Conflict):
    title = "Consent already withdrawn"


class ConsentStoreUnavailable(Unavailable):
    title = "Consent store unavailable"


class ConsentStore(Protocol):
    def add(self, record: ConsentRecord) -> None: ...

    def get(self, consent_id: str) -> ConsentRecord:
        """Raises :class:`ConsentNotFound`."""
        ...

    def for_subject(self, pseudonyms: Sequence[str]) -> list[ConsentRecord]:
        """Every record whose subject pseudonym is one of ``pseudonyms``, oldest first."""
        ...

    def withdraw(
        self, consent_id: str, *, at_ms: int, client_id: str, reason: str | None
    ) -> ConsentRecord:
        """Mark inactive; returns the updated record. Raises ConsentNotFound, ConsentConflict."""
        ...


def _row_values(record: ConsentRecord) -> dict[str, Any]:
    values = dataclasses.asdict(record)
    values["datasets"] = list(record.datasets)
    values["document_types"] = list(record.document_types)
    return values


def _from_row(row: Any) -> ConsentRecord:
    values = dict(row._mapping)
    values["datasets"] = tuple(values["datasets"])
    values["document_types"] = tuple(values["document_types"])
    return ConsentRecord(**values)


#: Run in a withdrawal's transaction with the consent id and the time (e.g. revoking the
#: attestations given under it, broker/attestation/store.py): both happen, or neither.
OnWithdraw = Callable[[Connection, str, int], object]


class SqlConsentStore:
    def __init__(self, engine: Engine, on_withdraw: OnWithdraw | None = None) -> None:
        self._engine = engine
        self._on_withdraw = on_withdraw

    def add(self, record: ConsentRecord) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(consents).values(**_row_values(record)))
        except SQLAlchemyError as e:
            raise ConsentStoreUnavailable("the consent could not be stored") from e

    def get(self, consent_id: str) -> ConsentRecord:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(consents).where(consents.c.id == consent_id)).first()
        except SQLAlchemyError as e:
            raise ConsentStoreUnavailable("the consent store cannot be read") from e
        if row is None:
            raise ConsentNotFound(f"no consent {consent_id}")
        return _from_row(row)

    def for_subject(self, pseudonyms: Sequence[str]) -> list[ConsentRecord]:
        if not pseudonyms:
            return []
        query = (
            select(consents)
            .where(consents.c.subject_pseudonym.in_(list(pseudonyms)))
            .order_by(consents.c.recorded_at_ms, consents.c.id)
        )
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as e:
            raise ConsentStoreUnavailable("the consent store cannot be read") from e
        return [_from_row(r) for r in rows]

    def withdraw(
        self, consent_id: str, *, at_ms: int, client_id: str, reason: str | None
    ) -> ConsentRecord:
        c = consents.c
        try:
            with self._engine.begin() as conn:
                changed = conn.execute(
                    update(consents)
                    .where(c.id == consent_id, c.status == "active")
                    .values(
                        status="inactive",
                        withdrawn_at_ms=at_ms,
                        withdrawn_by_client=client_id,
                        withdrawal_reason=reason,
                    )
                ).rowcount
                if changed == 1 and self._on_withdraw is not None:
                    self._on_withdraw(conn, consent_id, at_ms)
                row = conn.execute(select(consents).where(c.id == consent_id)).first()
        except SQLAlchemyError as e:
            raise ConsentStoreUnavailable("the withdrawal could not be stored") from e
        if row is None:
            raise ConsentNotFound(f"no consent {consent_id}")
        if changed != 1:
            raise ConsentConflict(f"consent {consent_id} is already withdrawn")
        return _from_row(row)


class MemoryConsentStore:
    """A :class:`ConsentStore` in memory, for tests of callers (the exchange pipeline)."""

    def __init__(self, records: Iterable[ConsentRecord] = ()) -> None:
        self._records = {r.id: r for r in records}
        self._lock = threading.Lock()

    def add(self, record: ConsentRecord) -> None:
        with self._lock:
            if record.id in self._records:
                raise ConsentConflict(f"consent {record.id} exists already")
            self._records[record.id] = record

    def get(self, consent_id: str) -> ConsentRecord:
        with self._lock:
            record = self._records.get(consent_id)
        if record is None:
            raise ConsentNotFound(f"no consent {consent_id}")
        return record

    def for_subject(self, pseudonyms: Sequence[str]) -> list[ConsentRecord]:
        wanted = set(pseudonyms)
        with self._lock:
            found = [r for r in self._records.values() if r.subject_pseudonym in wanted]
        return sorted(found, key=lambda r: (r.recorded_at_ms, r.id))

    def withdraw(
        self, consent_id: str, *, at_ms: int, client_id: str, reason: str | None
    ) -> ConsentRecord:
        with self._lock:
            record = self._records.get(consent_id)
            if record is None:
                raise ConsentNotFound(f"no consent {consent_id}")
            if record.status != "active":
                raise ConsentConflict(f"consent {consent_id} is already withdrawn")
            updated = dataclasses.replace(
                record,
                status="inactive",
                withdrawn_at_ms=at_ms,
                withdrawn_by_client=client_id,
                withdrawal_reason=reason,
            )
            self._records[consent_id] = updated
        return updated
