"""``Idempotency-Key``: a retried request is answered again, not logged or notified twice.

Keys are scoped to the client and bound to a SHA-256 of the request body: the same key with
another body is a 422. The first answer is kept only for ``ttl_seconds`` (it can hold released
fields), then purged; a key still being processed answers 409.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from broker.core.errors import Conflict, FieldProblem, InvalidInput
from broker.exchange.tables import idempotency_keys

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyStore:
    def __init__(self, engine: Engine, ttl_seconds: int) -> None:
        self._engine = engine
        self._ttl_ms = ttl_seconds * 1000

    def begin(self, client_id: str, key: str, digest: str, now_ms: int) -> StoredAnswer | None:
        """Claim ``key`` for this request, or return the answer a first request got.

        Raises InvalidInput (same key, other body) or Conflict (the first is still running).
        """
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput(
                "bad Idempotency-Key", [FieldProblem("Idempotency-Key", "1-200 printable chars")]
            )
        c = idempotency_keys.c
        with self._engine.begin() as conn:
            conn.execute(delete(idempotency_keys).where(c.created_ms < now_ms - self._ttl_ms))
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(idempotency_keys).values(
                            client_id=client_id, key=key, body_sha256=digest, created_ms=now_ms
                        )
                    )
                return None
            except IntegrityError:
                row = conn.execute(
                    select(idempotency_keys).where(c.client_id == client_id, c.key == key)
                ).one()
        if row.body_sha256 != digest:
            raise InvalidInput(
                "this Idempotency-Key was used with another request body",
                [FieldProblem("Idempotency-Key", "reused with a different body")],
            )
        if row.status_code is None:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        return StoredAnswer(int(row.status_code), dict(row.response))

    def finish(self, client_id: str, key: str, answer: StoredAnswer) -> None:
        c = idempotency_keys.c
        with self._engine.begin() as conn:
            conn.execute(
                update(idempotency_keys)
                .where(c.client_id == client_id, c.key == key)
                .values(status_code=answer.status_code, response=answer.body)
            )

    def abandon(self, client_id: str, key: str) -> None:
        """Release a key whose request ended without an answer worth repeating (e.g. a 503)."""
        c = idempotency_keys.c
        with self._engine.begin() as conn:
            conn.execute(delete(idempotency_keys).where(c.client_id == client_id, c.key == key))
