"""Exchanges held for the citizen's preview (the 202 flow): a small store and its rules.

The exchange pipeline calls :meth:`PreviewService.hold` when an agreement asks for a preview and
answers 202 with the hold's status URL. The citizen (through the council's portal, scope
``subject-access``) approves or refuses with :meth:`PreviewService.decide`; a hold not decided
by ``expires_at_ms`` is ``expired``. Approve, refuse and expiry are each logged once (the
pipeline logs the ``held`` exchange itself). The pipeline re-runs the exchange only when
:meth:`PreviewService.status` says ``approved``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from broker.audit.entry import AuditEntry
from broker.audit.memory import AuditSink
from broker.consent.tables import preview_holds
from broker.core.errors import Conflict, NotFound, Unavailable
from broker.core.pseudonym import Pseudonym

HoldStatus = Literal["held", "approved", "refused", "expired", "released"]
"""``released``: approved, and the requester has since received the record (once only)."""


class HoldNotFound(NotFound):
    title = "Held exchange not found"


class HoldDecided(Conflict):
    title = "Held exchange already decided"


class PreviewUnavailable(Unavailable):
    title = "Preview store unavailable"


@dataclass(frozen=True)
class HeldExchange:
    id: str
    exchange_id: str
    status: HoldStatus
    subject_pseudonym: str
    subject_key_version: str
    requester_party: str
    agreement_id: str
    dataset: str
    purpose: str
    fields: tuple[str, ...]
    created_at_ms: int
    expires_at_ms: int
    decided_at_ms: int | None = None
    decided_by_client: str | None = None
    requester_client: str | None = None
    """The system that made the held request (None on holds made before migration 0008)."""
    requester_user: str | None = None
    """The user the held request carried, verified or asserted (None as above)."""

    def to_json(self) -> dict[str, Any]:
        """What the portal and the requester see (no subject pseudonym)."""
        return {
            "id": self.id,
            "exchange_id": self.exchange_id,
            "status": self.status,
            "requester_party": self.requester_party,
            "requester_client": self.requester_client,
            "agreement_id": self.agreement_id,
            "dataset": self.dataset,
            "purpose": self.purpose,
            "fields": list(self.fields),
            "created_at_ms": self.created_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "decided_at_ms": self.decided_at_ms,
        }


def _from_row(row: Any) -> HeldExchange:
    values = dict(row._mapping)
    values["fields"] = tuple(values["fields"])
    return HeldExchange(**values)


class PreviewService:
    def __init__(self, engine: Engine, audit: AuditSink, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def hold(
        self,
        *,
        exchange_id: str,
        subject: Pseudonym,
        requester_party: str,
        requester_client: str,
        requester_user: str,
        agreement_id: str,
        dataset: str,
        purpose: str,
        fields: Sequence[str],
        ttl_seconds: int,
    ) -> HeldExchange:
        """Hold an exchange for the citizen's preview; an approval will be released only to
        ``requester_client`` asking for ``requester_user``. Raises PreviewUnavailable."""
        now = self._now_ms()
        held = HeldExchange(
            id=str(uuid.uuid4()),
            exchange_id=exchange_id,
            status="held",
            subject_pseudonym=subject.value,
            subject_key_version=subject.key_version,
            requester_party=requester_party,
            requester_client=requester_client,
            requester_user=requester_user,
            agreement_id=agreement_id,
            dataset=dataset,
            purpose=purpose,
            fields=tuple(fields),
            created_at_ms=now,
            expires_at_ms=now + ttl_seconds * 1000,
        )
        values = dataclasses.asdict(held)
        values["fields"] = list(held.fields)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(preview_holds).values(**values))
        except SQLAlchemyError as e:
            raise PreviewUnavailable("the exchange could not be held") from e
        return held

    def _read(self, clause: Any) -> HeldExchange | None:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(preview_holds).where(clause)).first()
        except SQLAlchemyError as e:
            raise PreviewUnavailable("the preview store cannot be read") from e
        return None if row is None else self._expire(_from_row(row))

    def _expire(self, held: HeldExchange) -> HeldExchange:
        """Mark a held exchange past its expiry as ``expired`` (and log that, once)."""
        now = self._now_ms()
        if held.status != "held" or now < held.expires_at_ms:
            return held
        if self._set_status(held, "expired", now, None):
            self._log(held, "preview.expired", None, now)
        return dataclasses.replace(held, status="expired", decided_at_ms=now)

    def _set_status(
        self, held: HeldExchange, status: HoldStatus, now: int, client: str | None
    ) -> bool:
        c = preview_holds.c
        try:
            with self._engine.begin() as conn:
                changed = conn.execute(
                    update(preview_holds)
                    .where(c.id == held.id, c.status == "held")
                    .values(status=status, decided_at_ms=now, decided_by_client=client)
                ).rowcount
        except SQLAlchemyError as e:
            raise PreviewUnavailable("the preview decision could not be stored") from e
        return bool(changed == 1)

    def _log(
        self,
        held: HeldExchange,
        action: str,
        client: str | None,
        now: int,
        user_id: str | None = None,
    ) -> None:
        self._audit.append(
            AuditEntry(
                user_id=user_id,
                kind="admin",
                time_ms=now,
                client_id=client,
                party_id=held.requester_party,
                purpose=held.purpose,
                dataset=held.dataset,
                subject=Pseudonym(held.subject_pseudonym, held.subject_key_version),
                details={
                    "action": action,
                    "hold_id": held.id,
                    "exchange_id": held.exchange_id,
                    "agreement_id": held.agreement_id,
                },
            )
        )

    def get(self, hold_id: str) -> HeldExchange:
        """Raises HoldNotFound."""
        held = self._read(preview_holds.c.id == hold_id)
        if held is None:
            raise HoldNotFound(f"no held exchange {hold_id}")
        return held

    def status(self, exchange_id: str) -> HeldExchange:
        """The hold of an exchange (for the pipeline's status URL). Raises HoldNotFound."""
        held = self._read(preview_holds.c.exchange_id == exchange_id)
        if held is None:
            raise HoldNotFound(f"exchange {exchange_id} is not held for preview")
        return held

    def release(self, exchange_id: str) -> bool:
        """Spend an approval: ``approved`` becomes ``released`` once, atomically. False when
        the hold is not (or no longer) approved. Raises PreviewUnavailable."""
        c = preview_holds.c
        now = self._now_ms()
        try:
            with self._engine.begin() as conn:
                changed = conn.execute(
                    update(preview_holds)
                    .where(
                        c.exchange_id == exchange_id,
                        c.status == "approved",
                        c.expires_at_ms > now,
                    )
                    .values(status="released")
                ).rowcount
        except SQLAlchemyError as e:
            raise PreviewUnavailable("the preview store cannot be written") from e
        return bool(changed)

    def pending_for(self, pseudonyms: Sequence[str]) -> list[HeldExchange]:
        """The subject's exchanges still waiting for a decision, oldest first."""
        c = preview_holds.c
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(preview_holds)
                    .where(c.subject_pseudonym.in_(list(pseudonyms)), c.status == "held")
                    .order_by(c.created_at_ms)
                ).all()
        except SQLAlchemyError as e:
            raise PreviewUnavailable("the preview store cannot be read") from e
        held = [self._expire(_from_row(r)) for r in rows]
        return [h for h in held if h.status == "held"]

    def decide(
        self,
        hold_id: str,
        *,
        approve: bool,
        pseudonyms: Sequence[str],
        client_id: str,
        user_id: str | None = None,
    ) -> HeldExchange:
        """The citizen's decision. ``pseudonyms`` are the deciding citizen's: a hold about
        someone else is not found, as an unknown one (its existence is not revealed). Raises
        HoldNotFound, HoldDecided (also when it expired first)."""
        held = self.get(hold_id)
        if held.subject_pseudonym not in pseudonyms:
            raise HoldNotFound(f"no held exchange {hold_id}")
        if held.status != "held":
            raise HoldDecided(f"the held exchange is already {held.status}")
        status: HoldStatus = "approved" if approve else "refused"
        now = self._now_ms()
        if not self._set_status(held, status, now, client_id):
            raise HoldDecided("the held exchange was decided meanwhile")
        self._log(held, f"preview.{status}", client_id, now, user_id)
        return dataclasses.replace(held, status=status, decided_at_ms=now)
