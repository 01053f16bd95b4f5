"""``Idempotency-Key``: a retried request is answered again, not logged or notified twice.

Keys are scoped to the client and bound to a SHA-256 of the request body: the same key with
another body is a 422. The first answer is kept only for ``ttl_seconds`` (it can hold released
fields), then purged; a key still being processed answers 409.

:class:`OnceOnly` runs an exchange under a key: the registry check of the client and the key's
claim share one worker-thread hand-off (it must pass before a stored answer is replayed); a
logged refusal or not-found is kept for replay, other failures release the key, and so does a
streamed document (a retry streams, and logs, again). The API layer says what an answer looks
like (:class:`AnswerShapes`); this module decides what is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from anyio import to_thread
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from broker.core.errors import BrokerError, Conflict, FieldProblem, InvalidInput, NotFound, Refused
from broker.core.identifiers import Caller
from broker.exchange.ports import ExchangeResult
from broker.exchange.request import ExchangeRequest
from broker.exchange.service import ExchangeService
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


#: Answers that were logged: a retry with the same key gets them again, unlogged.
REPEATABLE = (Refused, NotFound)


class AnswerShapes(Protocol):
    """What the answers look like (the API layer's): kept for a replay as they were sent."""

    def answer(self, result: ExchangeResult) -> StoredAnswer | None:
        """The answer to keep, or None for one that is not kept (a streamed document)."""
        ...

    def problem(self, error: BrokerError) -> StoredAnswer: ...


@dataclass(frozen=True, kw_only=True)
class Answered:
    result: ExchangeResult | None
    """None when the answer is a replay."""
    answer: StoredAnswer | None
    """The JSON answer (kept, or replayed); None for a streamed document."""
    replayed: bool = False


class OnceOnly:
    """Exchanges with an ``Idempotency-Key``."""

    def __init__(
        self, exchanges: ExchangeService, store: IdempotencyStore, clock: Callable[[], float]
    ) -> None:
        self._exchanges = exchanges
        self._store = store
        self._clock = clock

    async def handle(
        self,
        who: Callable[[], Caller],
        request: ExchangeRequest,
        *,
        client_id: str,
        key: str,
        body: bytes,
        shapes: AnswerShapes,
    ) -> Answered:
        """Run the exchange once for ``key``, or replay its first answer. Raises what
        :meth:`ExchangeService.handle` raises, and InvalidInput or Conflict for the key."""
        store = self._store
        digest = body_digest(body)
        now_ms = int(self._clock() * 1000)

        def check_then_begin() -> tuple[Caller, StoredAnswer | BrokerError | None]:
            caller = who()
            try:
                return caller, store.begin(client_id, key, digest, now_ms)
            except (InvalidInput, Conflict) as e:
                return caller, e

        caller, stored = await to_thread.run_sync(check_then_begin)
        if isinstance(stored, BrokerError):
            if request.break_glass:  # logged like any refused break-glass attempt
                await self._exchanges.log_refused(caller, request, stored)
            raise stored
        if stored is not None:
            return Answered(result=None, answer=stored, replayed=True)
        try:
            result = await self._exchanges.handle(caller, request)
        except BrokerError as e:
            if isinstance(e, REPEATABLE):
                await to_thread.run_sync(store.finish, client_id, key, shapes.problem(e))
            else:
                await to_thread.run_sync(store.abandon, client_id, key)
            raise
        answer = shapes.answer(result)
        if answer is None:
            await to_thread.run_sync(store.abandon, client_id, key)
        else:
            await to_thread.run_sync(store.finish, client_id, key, answer)
        return Answered(result=result, answer=answer)
