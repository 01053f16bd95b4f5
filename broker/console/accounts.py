"""Officer accounts, sign-in with throttling, and server-side sessions.

Passwords are argon2id hashes (argon2-cffi defaults: RFC 9106 low-memory profile). A session
cookie value is 32 random bytes; only its SHA-256 is stored, so a copy of the database does not
sign anyone in. Each session carries its own CSRF token. Sessions end after
``idle_seconds`` without a request or ``max_seconds`` after sign-in, whichever comes first.

Throttling: after ``FREE_FAILURES`` wrong passwords in a row an account is locked for
``LOCK_BASE_SECONDS`` doubling with each further failure (capped at ``LOCK_MAX_SECONDS``); a right
password during the lock is refused too. An unknown username costs the same hash as a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from broker.console.errors import SessionRequired, SignInRefused
from broker.console.passwords import check_password
from broker.console.tables import console_sessions, console_users
from broker.core.errors import Conflict, InvalidInput

FREE_FAILURES = 5
LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 900
#: Sessions one account may hold at once; signing in again ends the oldest beyond these.
MAX_SESSIONS = 5
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,99}$")


class Role(StrEnum):
    """Console roles, following the API's scopes."""

    GOVERNANCE = "governance"
    """A party's governance officer (Caldicott Guardian, DPO, IAO): only its party's exchanges
    and agreements; reviews break-glass on them; answers subject access requests."""
    OVERSIGHT = "oversight"
    """The operator's SIRO/DPO: everything."""
    AGREEMENT_ADMIN = "agreement-admin"
    """Agreements, their usage figures and reports; no exchange records about people."""
    AUDITOR = "auditor"
    """Read-only: everything an oversight officer sees, changes nothing but may run verification."""


@dataclass(frozen=True)
class Account:
    username: str
    party_id: str
    role: Role
    display_name: str | None
    active: bool

    @property
    def actor(self) -> str:
        """How this officer appears as ``client_id`` in the audit log."""
        return f"console:{self.username}"


@dataclass(frozen=True)
class Session:
    account: Account
    csrf: str
    created_ms: int


def _now_ms() -> int:
    return int(time.time() * 1000)


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """One of an account's sessions as listed to its officer or administrator: ``handle`` is
    the first 16 hex digits of the stored hash (never the cookie value)."""

    handle: str
    created_ms: int
    seen_ms: int


def _account(row: Row[Any]) -> Account:
    return Account(row.username, row.party_id, Role(row.role), row.display_name, row.active)


class Accounts:
    """Accounts and sessions on the broker database."""

    def __init__(
        self,
        engine: Engine,
        *,
        idle_seconds: int = 1800,
        max_seconds: int = 8 * 3600,
        clock_ms: Callable[[], int] = _now_ms,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._engine = engine
        self._idle_ms = idle_seconds * 1000
        self._max_ms = max_seconds * 1000
        self._clock_ms = clock_ms
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    # --- accounts -------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        party_id: str,
        role: Role,
        password: str,
        *,
        display_name: str | None = None,
        check_strength: bool = True,
        context: tuple[str, ...] = (),
    ) -> Account:
        """Create an account. Raises InvalidInput (bad name, a password
        :mod:`broker.console.passwords` refuses; ``context`` holds the party's id and name),
        Conflict (exists)."""
        if not _USERNAME.match(username):
            raise InvalidInput("a username is 2-100 of a-z 0-9 . _ @ - (lowercase)")
        if check_strength:
            check_password(password, username=username, context=(party_id, *context))
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(console_users).values(
                        username=username,
                        party_id=party_id,
                        role=role.value,
                        display_name=display_name,
                        password_hash=self._hasher.hash(password),
                        active=True,
                        created_ms=self._clock_ms(),
                        failed_logins=0,
                        locked_until_ms=0,
                    )
                )
        except IntegrityError as e:
            raise Conflict(f"console user {username} exists already") from e
        return Account(username, party_id, role, display_name, True)

    def find(self, username: str) -> Account | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(console_users).where(console_users.c.username == username)
            ).first()
        if row is None:
            return None
        return _account(row)

    def find_linked(self, issuer: str, subject: str) -> Account:
        """The account linked to this identity-provider issuer and subject, when it is active
        and not locked. Raises :class:`SignInRefused`."""
        u = console_users.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(console_users).where(u.oidc_issuer == issuer, u.oidc_subject == subject)
            ).first()
        if row is None:
            raise SignInRefused("no console account is linked to this identity")
        if not row.active or row.locked_until_ms > self._clock_ms():
            raise SignInRefused("this console account is suspended or locked")
        return _account(row)

    def list_users(self) -> list[Account]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(console_users).order_by(console_users.c.username)).all()
        return [_account(r) for r in rows]

    # --- sign-in --------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Account:
        """The account when the password is right and the account neither locked nor disabled.

        Raises :class:`SignInRefused` (one message for every reason).
        """
        refused = SignInRefused("the username or password is not right, or the account is locked")
        now = self._clock_ms()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(console_users).where(console_users.c.username == username)
            ).first()
        if row is None:
            self._verify(self._dummy, password)
            raise refused
        good = self._verify(row.password_hash, password)
        if row.locked_until_ms > now or not row.active:
            raise refused
        if not good:
            failures = row.failed_logins + 1
            locked_until = 0
            if failures >= FREE_FAILURES:
                lock = min(LOCK_BASE_SECONDS * 2 ** (failures - FREE_FAILURES), LOCK_MAX_SECONDS)
                locked_until = now + lock * 1000
            with self._engine.begin() as conn:
                conn.execute(
                    update(console_users)
                    .where(console_users.c.username == username)
                    .values(failed_logins=failures, locked_until_ms=locked_until)
                )
            raise refused
        if row.failed_logins:
            with self._engine.begin() as conn:
                conn.execute(
                    update(console_users)
                    .where(console_users.c.username == username)
                    .values(failed_logins=0, locked_until_ms=0)
                )
        return _account(row)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # --- sessions -------------------------------------------------------------------------------

    def open_session(self, account: Account) -> tuple[str, Session]:
        """A new session: ``(cookie value, session)``. The account's oldest sessions beyond
        ``MAX_SESSIONS`` end."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock_ms()
        with self._engine.begin() as conn:
            conn.execute(  # sessions nobody used for the idle time are over: tidy them away
                delete(console_sessions).where(console_sessions.c.seen_ms < now - self._idle_ms)
            )
            conn.execute(
                insert(console_sessions).values(
                    id_hash=_hash_id(session_id),
                    username=account.username,
                    csrf=csrf,
                    created_ms=now,
                    seen_ms=now,
                )
            )
            s = console_sessions.c
            keep = (
                select(s.id_hash)
                .where(s.username == account.username)
                .order_by(s.created_ms.desc(), s.id_hash)
                .limit(MAX_SESSIONS)
            )
            conn.execute(
                delete(console_sessions).where(
                    s.username == account.username, s.id_hash.not_in(keep.scalar_subquery())
                )
            )
        return session_id, Session(account, csrf, now)

    def list_sessions(self, username: str) -> list[SessionInfo]:
        """The account's live-looking sessions, newest first."""
        s = console_sessions.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(s.id_hash, s.created_ms, s.seen_ms)
                .where(s.username == username)
                .order_by(s.created_ms.desc())
            ).all()
        return [SessionInfo(r.id_hash[:16], r.created_ms, r.seen_ms) for r in rows]

    def end_sessions(self, username: str, handle: str | None = None) -> int:
        """End one of the account's sessions (by handle) or all of them: how many ended."""
        s = console_sessions.c
        query = delete(console_sessions).where(s.username == username)
        if handle is not None:
            if not re.fullmatch(r"[0-9a-f]{16}", handle):
                return 0
            query = query.where(s.id_hash.startswith(handle))
        with self._engine.begin() as conn:
            return conn.execute(query).rowcount

    @staticmethod
    def handle_of(session_id: str) -> str:
        """The handle :meth:`list_sessions` shows for a cookie value."""
        return _hash_id(session_id)[:16]

    def session(self, session_id: str | None) -> Session:
        """The live session for a cookie value (its idle timer restarted).

        Raises :class:`SessionRequired` when missing, unknown, expired, or the account is
        disabled.
        """
        if not session_id:
            raise SessionRequired("sign in to use the console")
        now = self._clock_ms()
        s, u = console_sessions.c, console_users.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(s.csrf, s.created_ms, s.seen_ms, u.username, u.party_id, u.role, u.active)
                .add_columns(u.display_name)
                .join_from(console_sessions, console_users, s.username == u.username)
                .where(s.id_hash == _hash_id(session_id))
            ).first()
        if row is None:
            raise SessionRequired("sign in to use the console")
        if (
            not row.active
            or now - row.seen_ms > self._idle_ms
            or now - row.created_ms > self._max_ms
        ):
            self.close_session(session_id)
            raise SessionRequired("your session has ended: sign in again")
        if now - row.seen_ms > 60_000:  # refresh the idle timer at most once a minute
            with self._engine.begin() as conn:
                conn.execute(
                    update(console_sessions)
                    .where(s.id_hash == _hash_id(session_id))
                    .values(seen_ms=now)
                )
        return Session(_account(row), row.csrf, row.created_ms)

    def close_session(self, session_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(console_sessions).where(console_sessions.c.id_hash == _hash_id(session_id))
            )


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
