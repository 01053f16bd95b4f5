"""Where the attestations' statuses live: allocated before signing, revoked by a consent's
withdrawal (in its transaction) or by a document found altered; read into the status list.

Every database error is :class:`AttestationStoreUnavailable` (503): no status, no attestation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from broker.attestation.tables import attestation_statuses
from broker.core.errors import Unavailable

CONSENT_WITHDRAWN = "consent_withdrawn"
DOCUMENT_CHANGED = "document_changed"


class AttestationStoreUnavailable(Unavailable):
    title = "Attestation status store unavailable"


@dataclass(frozen=True, kw_only=True)
class NewStatus:
    """What is recorded about one attestation before it is signed."""

    jti: str
    exchange_id: str
    dataset: str
    document_sha256: str
    consent_id: str | None
    audience: str
    issued_ms: int
    expires_ms: int


def revoke_for_consent(conn: Connection, consent_id: str, at_ms: int) -> int:
    """Revoke, on ``conn`` (the withdrawal's transaction), every attestation given under the
    consent. Returns how many."""
    c = attestation_statuses.c
    result = conn.execute(
        update(attestation_statuses)
        .where(c.consent_id == consent_id, c.status == "valid")
        .values(status="revoked", revoked_ms=at_ms, revoked_reason=CONSENT_WITHDRAWN)
    )
    return int(result.rowcount or 0)


class SqlAttestationStatuses:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def allocate(self, new: NewStatus) -> int:
        """Record a valid status; returns its index in the list."""
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    insert(attestation_statuses).values(
                        jti=new.jti,
                        exchange_id=new.exchange_id,
                        dataset=new.dataset,
                        document_sha256=new.document_sha256,
                        consent_id=new.consent_id,
                        audience=new.audience,
                        status="valid",
                        issued_ms=new.issued_ms,
                        expires_ms=new.expires_ms,
                    )
                )
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestation status could not be stored") from e
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def revoke_document(self, sha256: str, at_ms: int) -> int:
        """Revoke every attestation over a document whose content no longer matches ``sha256``."""
        c = attestation_statuses.c
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    update(attestation_statuses)
                    .where(c.document_sha256 == sha256, c.status == "valid")
                    .values(status="revoked", revoked_ms=at_ms, revoked_reason=DOCUMENT_CHANGED)
                )
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestations could not be revoked") from e
        return int(result.rowcount or 0)

    def revoke_consent(self, consent_id: str, at_ms: int) -> int:
        try:
            with self._engine.begin() as conn:
                return revoke_for_consent(conn, consent_id, at_ms)
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestations could not be revoked") from e

    def snapshot(self) -> tuple[list[int], int]:
        """(the revoked indexes, the list's size: the highest index + 1)."""
        c = attestation_statuses.c
        try:
            with self._engine.connect() as conn:
                top = conn.execute(select(func.max(c.idx))).scalar()
                revoked = conn.execute(select(c.idx).where(c.status == "revoked")).scalars()
                indexes = [int(i) for i in revoked]
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestation statuses cannot be read") from e
        return indexes, (int(top) + 1 if top is not None else 0)

    def exchange_count(self, exchange_id: str) -> int:
        """How many attestations were signed (or about to be) in one exchange."""
        c = attestation_statuses.c
        try:
            with self._engine.connect() as conn:
                query = select(func.count()).where(c.exchange_id == exchange_id)
                return int(conn.execute(query).scalar() or 0)
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestation statuses cannot be read") from e

    def status_of(self, jti: str) -> str | None:
        """``valid`` | ``revoked`` | None (unknown): for tests and the operator."""
        c = attestation_statuses.c
        try:
            with self._engine.connect() as conn:
                value = conn.execute(select(c.status).where(c.jti == jti)).scalar()
        except SQLAlchemyError as e:
            raise AttestationStoreUnavailable("the attestation statuses cannot be read") from e
        return None if value is None else str(value)
