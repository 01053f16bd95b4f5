"""Webhook registrations: where each provider party is sent its notifications.

Only an administrator registers a URL (``broker webhooks add``, or the demo set-up); nothing in a
request can name one, so the broker cannot be made to post to an address of a caller's choosing.
URLs must be ``https://``, except on a loopback host (the demo receiver, tests), and must not be,
or resolve to, a loopback, private, link-local or metadata address unless the operator
allow-lists it (:mod:`broker.outbound`; checked again at every delivery). Every change is an
``admin_events`` row written in the same transaction. Secrets never appear in events or lists.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, update

from broker.audit.admin import log_admin_event
from broker.core.errors import Conflict, NotFound
from broker.core.urls import check_admin_url
from broker.db.tables import parties
from broker.notify.signing import new_secret
from broker.notify.tables import webhooks
from broker.outbound import OutboundGuard


@dataclass(frozen=True)
class Webhook:
    party_id: str
    url: str
    active: bool
    created_ms: int
    updated_ms: int
    secret: str = field(repr=False)


def check_url(url: str) -> str:
    """The URL if acceptable (see :func:`broker.core.urls.check_admin_url`). Raises InvalidInput."""
    return check_admin_url(url, "url")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _from_row(r: Any) -> Webhook:
    return Webhook(r.party_id, r.url, bool(r.active), r.created_ms, r.updated_ms, r.secret)


# Built once: the delivery worker runs it every cycle.
_FOR_PARTIES = select(webhooks).where(webhooks.c.party_id.in_(bindparam("parties", expanding=True)))


class WebhookRegistry:
    """Admin-only registrations, one per party."""

    def __init__(self, engine: Engine, guard: OutboundGuard | None = None) -> None:
        self._engine = engine
        self.guard = guard or OutboundGuard()
        """The outbound address rule (the default allows nothing inside)."""

    def add(self, party_id: str, url: str, *, actor: str, secret: str | None = None) -> Webhook:
        """Register ``party_id``'s webhook with a fresh secret (or ``secret``).

        Raises NotFound (no such party), Conflict (already registered), InvalidInput (URL,
        naming the refused address class).
        """
        self.guard.check_url(check_url(url), "url")
        now = _now_ms()
        with self._engine.begin() as conn:
            if conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first() is None:
                raise NotFound(f"no party {party_id!r}")
            existing = conn.execute(
                select(webhooks.c.party_id).where(webhooks.c.party_id == party_id)
            ).first()
            if existing is not None:
                raise Conflict(f"party {party_id!r} already has a webhook; remove it first")
            hook = Webhook(party_id, url, True, now, now, secret or new_secret())
            conn.execute(
                insert(webhooks).values(
                    party_id=party_id,
                    url=url,
                    secret=hook.secret,
                    active=True,
                    created_ms=now,
                    updated_ms=now,
                )
            )
            log_admin_event(
                conn, actor=actor, action="webhooks.add", target=party_id, details={"url": url}
            )
        return hook

    def remove(self, party_id: str, *, actor: str) -> None:
        """Delete the registration (pending notifications wait for a new one). Raises NotFound."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(webhooks).where(webhooks.c.party_id == party_id))
            if result.rowcount == 0:
                raise NotFound(f"party {party_id!r} has no webhook")
            log_admin_event(
                conn, actor=actor, action="webhooks.remove", target=party_id, details={}
            )

    def set_active(self, party_id: str, active: bool, *, actor: str) -> None:
        """Pause or resume deliveries to a party. Raises NotFound."""
        self._update(
            party_id,
            {"active": active},
            actor,
            "webhooks.activate" if active else "webhooks.deactivate",
        )

    def rotate_secret(self, party_id: str, *, actor: str) -> str:
        """A new secret for ``party_id``; deliveries are signed with it from now on."""
        secret = new_secret()
        self._update(party_id, {"secret": secret}, actor, "webhooks.rotate-secret")
        return secret

    def _update(self, party_id: str, values: dict[str, Any], actor: str, action: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(webhooks)
                .where(webhooks.c.party_id == party_id)
                .values(updated_ms=_now_ms(), **values)
            )
            if result.rowcount == 0:
                raise NotFound(f"party {party_id!r} has no webhook")
            details = {k: v for k, v in values.items() if k != "secret"}
            log_admin_event(conn, actor=actor, action=action, target=party_id, details=details)

    def get(self, party_id: str) -> Webhook | None:
        with self._engine.connect() as conn:
            r = conn.execute(select(webhooks).where(webhooks.c.party_id == party_id)).first()
        return None if r is None else _from_row(r)

    def for_parties(self, party_ids: Collection[str]) -> dict[str, Webhook]:
        """The registrations of ``party_ids`` (active or not) by party, in one query."""
        if not party_ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(_FOR_PARTIES, {"parties": list(party_ids)}).all()
        return {r.party_id: _from_row(r) for r in rows}

    def list(self) -> list[Webhook]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhooks).order_by(webhooks.c.party_id)).all()
        return [_from_row(r) for r in rows]
