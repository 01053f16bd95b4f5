"""Changes an administrator of an account's party makes to it from the command line
(``broker/cli/console.py``): link it to one identity-provider issuer and subject, unlink it,
suspend or reinstate it, end its sessions. Each names the party it acts for, is refused for an
account of another party, and is an ``admin_events`` row written in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from broker.audit.admin import log_admin_event
from broker.console.tables import console_sessions, console_users
from broker.core.errors import Conflict, InvalidInput, NotFound


class Enrolment:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _check_party(self, conn: Connection, username: str, party_id: str) -> None:
        row = conn.execute(
            select(console_users.c.party_id).where(console_users.c.username == username)
        ).first()
        if row is None or row.party_id != party_id:  # another party's account is not found
            raise NotFound(f"no console user {username} at party {party_id}")

    def _change(
        self, username: str, party_id: str, actor: str, action: str, values: dict[str, Any]
    ) -> None:
        details = {k: v for k, v in values.items() if k != "active"} | {"party": party_id}
        try:
            with self._engine.begin() as conn:
                self._check_party(conn, username, party_id)
                conn.execute(
                    update(console_users)
                    .where(console_users.c.username == username)
                    .values(**values)
                )
                if values.get("active") is False or "oidc_subject" in values:
                    conn.execute(
                        delete(console_sessions).where(console_sessions.c.username == username)
                    )
                log_admin_event(
                    conn, actor=actor, action=f"console.{action}", target=username, details=details
                )
        except IntegrityError as e:
            raise Conflict("another console account is linked to this identity") from e

    def link(self, username: str, party_id: str, issuer: str, subject: str, actor: str) -> None:
        """Link the account to one issuer and subject (replacing any earlier link). Raises
        InvalidInput, NotFound (no such account at this party), Conflict (identity taken)."""
        issuer = issuer.strip().rstrip("/")
        if not issuer.startswith(("https://", "http://")) or len(issuer) > 500:
            raise InvalidInput("the issuer is the provider's URL (its ID tokens' iss)")
        if not subject or len(subject) > 255 or subject != subject.strip():
            raise InvalidInput("the subject is the ID tokens' sub: 1-255 characters")
        self._change(
            username, party_id, actor, "link-oidc", {"oidc_issuer": issuer, "oidc_subject": subject}
        )

    def unlink(self, username: str, party_id: str, actor: str) -> None:
        """The account can no longer sign in through the identity provider. Raises NotFound."""
        self._change(
            username, party_id, actor, "unlink-oidc", {"oidc_issuer": None, "oidc_subject": None}
        )

    def set_active(self, username: str, party_id: str, active: bool, actor: str) -> None:
        """Suspend (its sessions end) or reinstate the account. Raises NotFound."""
        action = "reinstate-user" if active else "suspend-user"
        values: dict[str, Any] = {"active": active}
        if active:
            values |= {"failed_logins": 0, "locked_until_ms": 0}
        self._change(username, party_id, actor, action, values)

    def end_sessions(
        self, username: str, party_id: str, actor: str, handle: str | None = None
    ) -> int:
        """End one session of the account (by its listed handle) or all: how many ended.
        Raises NotFound."""
        if handle is not None and not re.fullmatch(r"[0-9a-f]{16}", handle):
            raise InvalidInput("a session handle is the 16 hex digits list-sessions shows")
        s = console_sessions.c
        with self._engine.begin() as conn:
            self._check_party(conn, username, party_id)
            query = delete(console_sessions).where(s.username == username)
            if handle is not None:
                query = query.where(s.id_hash.startswith(handle))
            ended = conn.execute(query).rowcount
            log_admin_event(
                conn,
                actor=actor,
                action="console.end-sessions",
                target=username,
                details={"party": party_id, "handle": handle, "ended": ended},
            )
        return ended

    def check_party(self, username: str, party_id: str) -> None:
        """Raises NotFound unless ``username`` is an account of ``party_id``."""
        with self._engine.connect() as conn:
            self._check_party(conn, username, party_id)
