"""The trust root: a party's agreement-signing key is set by the party, never by the operator.

- The **first** key of a party is registered when two distinct officers of that party approve it,
  each repeating its RFC 7638 thumbprint (confirmed out of band, e.g. read aloud between them).
- A **rotation** is a statement signed with the party's current key (its latest registered one)
  naming the new key's thumbprint; the new key becomes current. Earlier keys stay in the trust
  store only to verify what they signed before; a new signature must be by the current key.
- The operator's file import (``broker parties import-keys``) never adds a key for a party that
  already has one, and outside demo mode it adds none at all.

Every change is an admin act in the log and a notice to the party's webhook.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from broker.agreements.errors import AgreementError, refuse_published_keys
from broker.agreements.signing import TrustedKey, TrustSnapshot, thumbprint, verify_detached
from broker.agreements.tables import party_key_approvals, party_keys
from broker.audit.admin import log_admin_event, time_ms
from broker.core.canonical import JSONValue, canonical_bytes
from broker.core.errors import Conflict, InvalidInput, Unavailable
from broker.notify.tables import outbox, webhooks

KEY_CONTEXT = "information-sharing-broker signing key v1"
APPROVALS_NEEDED = 2
EVENT_KEY_CHANGED = "agreements.signing-key-changed"
_PUBLIC = ("kty", "crv", "x", "y", "alg", "use")


def rotation_statement(party_id: str, new_kid: str, previous_kid: str) -> bytes:
    """The RFC 8785 bytes a party signs with its current key to make ``new_kid`` current."""
    content: dict[str, JSONValue] = {
        "context": KEY_CONTEXT,
        "action": "rotate-key",
        "party": party_id,
        "kid": new_kid,
        "previous_kid": previous_kid,
    }
    return canonical_bytes(content)


@dataclass(frozen=True)
class Officer:
    id: str
    party_id: str


def _public(jwk: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(jwk, Mapping) or "d" in jwk:
        raise InvalidInput("send the public key only (a JWK without private members)")
    try:
        kid = thumbprint(jwk)
    except AgreementError as e:
        raise InvalidInput(e.detail) from e
    public = {k: v for k, v in jwk.items() if k in _PUBLIC}
    public["kid"] = kid
    return kid, public


class TrustRoot:
    def __init__(self, engine: Engine, *, demo: bool, now: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.demo = demo
        self.now = now

    def _keys(self, conn: Connection, party_id: str) -> list[Any]:
        k = party_keys
        return list(
            conn.execute(
                select(k).where(k.c.party_id == party_id).order_by(k.c.imported_at, k.c.kid)
            ).all()
        )

    def view(self, party_id: str) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                keys = self._keys(conn, party_id)
                a = party_key_approvals
                pending = conn.execute(select(a).where(a.c.party_id == party_id)).all()
        except SQLAlchemyError as e:
            raise Unavailable(f"trust store unavailable ({type(e).__name__})") from e
        registered = {k.kid for k in keys}
        waiting: dict[str, list[str]] = {}
        for row in pending:
            if row.kid not in registered:
                waiting.setdefault(row.kid, []).append(row.approver)
        return {
            "party": party_id,
            "current_kid": keys[-1].kid if keys else None,
            "keys": [
                {"kid": k.kid, "source": k.source, "registered_at": k.imported_at.isoformat()}
                for k in keys
            ],
            "pending": [{"kid": kid, "approvals": sorted(v)} for kid, v in sorted(waiting.items())],
            "approvals_needed": APPROVALS_NEEDED,
        }

    def approve_first(
        self, officer: Officer, jwk: Mapping[str, Any], confirmed: str
    ) -> dict[str, Any]:
        """One officer's approval of the party's first key; the second distinct one registers
        it. ``confirmed`` must repeat the key's thumbprint."""
        kid, public = _public(jwk)
        if confirmed != kid:
            raise InvalidInput(
                f"the thumbprint confirmed ({confirmed!r}) is not the key's ({kid}); "
                "compare it out of band before approving"
            )
        try:
            refuse_published_keys([kid], demo=self.demo)
        except AgreementError as e:
            raise InvalidInput(e.detail) from e
        now = self.now()
        party = officer.party_id
        a = party_key_approvals
        with self._begin() as conn:
            if self._keys(conn, party):
                raise Conflict(
                    f"{party!r} already has a signing key: a new one is registered only by a "
                    "rotation statement signed with the current key"
                )
            taken = conn.execute(select(party_keys.c.party_id).where(party_keys.c.kid == kid))
            if taken.first() is not None:
                raise Conflict(f"key {kid} is already trusted for another party")
            approvers = set(
                conn.execute(
                    select(a.c.approver).where(a.c.party_id == party, a.c.kid == kid)
                ).scalars()
            )
            if officer.id in approvers:
                raise Conflict("you have already approved this key: a second officer must")
            conn.execute(
                insert(a).values(
                    party_id=party, kid=kid, approver=officer.id, jwk=public, approved_at=now
                )
            )
            approvers.add(officer.id)
            registered = len(approvers) >= APPROVALS_NEEDED
            action = "parties.signing-key.register" if registered else "parties.signing-key.approve"
            if registered:
                conn.execute(
                    insert(party_keys).values(
                        kid=kid,
                        party_id=party,
                        jwk=public,
                        source="approved by " + ", ".join(sorted(approvers)),
                        imported_at=now,
                        imported_by=officer.id,
                    )
                )
            entry = log_admin_event(
                conn,
                at=now,
                actor=officer.id,
                action=action,
                target=party,
                details={"kid": kid, "approvals": len(approvers)},
            )
            notify_party(conn, party, entry, now, {"action": action, "kid": kid})
        return self.view(party)

    def rotate(self, officer: Officer, jwk: Mapping[str, Any], token: str) -> dict[str, Any]:
        """Make ``jwk`` the party's current key: ``token`` is a detached JWS by the current key
        over :func:`rotation_statement`."""
        kid, public = _public(jwk)
        try:
            refuse_published_keys([kid], demo=self.demo)
        except AgreementError as e:
            raise InvalidInput(e.detail) from e
        now = self.now()
        party = officer.party_id
        with self._begin() as conn:
            keys = self._keys(conn, party)
            if not keys:
                raise Conflict(f"{party!r} has no key yet: two officers approve its first one")
            current = keys[-1]
            if kid in {k.kid for k in keys}:
                raise Conflict(f"key {kid} is already registered for {party!r}")
            taken = conn.execute(select(party_keys.c.party_id).where(party_keys.c.kid == kid))
            if taken.first() is not None:
                raise Conflict(f"key {kid} is already trusted for another party")
            trust = TrustSnapshot.of([TrustedKey(current.kid, party, current.jwk)])
            check = verify_detached(
                rotation_statement(party, kid, current.kid), token, party, trust
            )
            if not check.valid:
                raise InvalidInput(
                    f"rotation refused: {check.reason} (sign the rotation statement with the "
                    f"current key {current.kid})"
                )
            conn.execute(
                insert(party_keys).values(
                    kid=kid,
                    party_id=party,
                    jwk=public,
                    source=f"rotated from {current.kid}",
                    imported_at=now,
                    imported_by=officer.id,
                )
            )
            entry = log_admin_event(
                conn,
                at=now,
                actor=officer.id,
                action="parties.signing-key.rotate",
                target=party,
                details={"kid": kid, "previous_kid": current.kid},
            )
            notify_party(
                conn,
                party,
                entry,
                now,
                {"action": "parties.signing-key.rotate", "kid": kid, "previous_kid": current.kid},
            )
        return self.view(party)

    def _begin(self) -> Any:
        return _Tx(self.engine)


class _Tx:
    def __init__(self, engine: Engine) -> None:
        self._cm = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except SQLAlchemyError as e:
            raise Unavailable(f"trust store unavailable ({type(e).__name__})") from e

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        try:
            self._cm.__exit__(kind, value, tb)
        except SQLAlchemyError as e:
            raise Unavailable(f"trust store unavailable ({type(e).__name__})") from e


def current_kids(engine: Engine) -> dict[str, str]:
    """The current (latest registered) key of each party, by party id."""
    k = party_keys
    with engine.connect() as conn:
        rows = conn.execute(select(k.c.party_id, k.c.kid).order_by(k.c.imported_at, k.c.kid))
        return {r.party_id: r.kid for r in rows}


def notify_party(
    conn: Connection,
    party_id: str,
    entry_id: str,
    now: dt.datetime,
    data: dict[str, Any],
    *,
    event_type: str = EVENT_KEY_CHANGED,
) -> None:
    """Queue a notice to the party's webhook (when it has one) in the same transaction."""
    hook = conn.execute(
        select(webhooks.c.party_id).where(webhooks.c.party_id == party_id, webhooks.c.active)
    ).first()
    if hook is None:
        return
    at = time_ms(now)
    conn.execute(
        insert(outbox).values(
            id=str(uuid.uuid4()),
            exchange_id=entry_id,
            party_id=party_id,
            event_type=event_type,
            payload=json.dumps({**data, "party": party_id}, sort_keys=True),
            status="pending",
            attempts=0,
            next_attempt_ms=at,
            created_ms=at,
        )
    )
