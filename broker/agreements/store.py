"""Where the agreements area keeps state: the trust store of party keys, recorded revocations and
the highest version of each agreement seen. A small port with a SQL and an in-memory implementation.

Revocations and versions only ever accumulate: deleting a revocation file or putting back an older
signed version changes nothing here, so it never restores access.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.agreements.errors import (
    AgreementStoreUnavailableError,
    KeyConflictError,
    UnknownPartyError,
    UnusableKeyError,
    refuse_published_keys,
)
from broker.agreements.signing import TrustedKey, TrustSnapshot, thumbprint
from broker.agreements.status import AgreementState, RevocationRecord, VersionSeen
from broker.agreements.tables import (
    agreement_draft_signatures,
    agreement_drafts,
    agreement_revocations,
    agreement_versions,
    party_keys,
)
from broker.audit.admin import log_admin_event
from broker.db.tables import parties

#: Stored statuses of an agreement held in the database once every party signed it.
SIGNED_STATUSES = ("signed", "revoked")


@dataclass(frozen=True)
class StoredAgreement:
    """An agreement held in the database and signed by every party through statements
    (``broker.agreements.statements``): the policy loads it as it loads a file."""

    draft_id: str
    yaml: str
    previous_digest: str | None
    signatures: Mapping[str, str]
    """Each party's detached JWS over its sign (or renew) statement, by party id."""


class AgreementStateStore(Protocol):
    """The state the agreement loader reads and records."""

    def trust_snapshot(self) -> TrustSnapshot: ...

    def revocations(self) -> list[RevocationRecord]: ...

    def record_revocation(
        self, record: RevocationRecord, document: dict[str, Any], signature: str, now: dt.datetime
    ) -> bool:
        """Record a verified revocation; True when it was not known before."""
        ...

    def highest_versions(self) -> dict[str, VersionSeen]: ...

    def state(self) -> AgreementState:
        """The revocations and highest versions recorded now (cheap: no documents read)."""
        ...

    def record_version(self, seen: VersionSeen, now: dt.datetime) -> None:
        """Raise the highest version seen of an agreement (a lower version changes nothing; the
        first digest recorded for a version is kept)."""
        ...

    def stored_agreements(self) -> list[StoredAgreement]:
        """The agreements held in the database that every party has signed."""
        ...


@dataclass
class MemoryAgreementStore:
    """In-memory store for tests and ``verify --demo``."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)
    revoked: dict[str, RevocationRecord] = field(default_factory=dict)
    versions: dict[str, VersionSeen] = field(default_factory=dict)
    stored: list[StoredAgreement] = field(default_factory=list)

    def stored_agreements(self) -> list[StoredAgreement]:
        return list(self.stored)

    def trust_snapshot(self) -> TrustSnapshot:
        return TrustSnapshot(dict(self.keys))

    def revocations(self) -> list[RevocationRecord]:
        return list(self.revoked.values())

    def record_revocation(
        self, record: RevocationRecord, document: dict[str, Any], signature: str, now: dt.datetime
    ) -> bool:
        if record.digest in self.revoked:
            return False
        self.revoked[record.digest] = record
        return True

    def highest_versions(self) -> dict[str, VersionSeen]:
        return dict(self.versions)

    def state(self) -> AgreementState:
        return AgreementState.of(
            self.revocations(), self.versions, frozenset(a.draft_id for a in self.stored)
        )

    def record_version(self, seen: VersionSeen, now: dt.datetime) -> None:
        current = self.versions.get(seen.agreement_id)
        if current is None or current.version < seen.version:
            self.versions[seen.agreement_id] = seen


P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """Database failures leave as :class:`AgreementStoreUnavailableError` (fail closed, 503)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as e:
            raise AgreementStoreUnavailableError(
                f"agreement store unavailable ({type(e).__name__}); run the migrations?"
            ) from e

    return wrapper


class SqlAgreementStore:
    """The store in the broker's database (tables of migration 0002). Every method raises
    :class:`AgreementStoreUnavailableError` when the database fails."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_translated
    def trust_snapshot(self) -> TrustSnapshot:
        with self._engine.connect() as conn:
            rows = conn.execute(select(party_keys.c.kid, party_keys.c.party_id, party_keys.c.jwk))
            return TrustSnapshot.of([TrustedKey(r.kid, r.party_id, r.jwk) for r in rows])

    @_translated
    def revocations(self) -> list[RevocationRecord]:
        t = agreement_revocations
        with self._engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.first_seen_at, t.c.digest))
            return [
                RevocationRecord(
                    r.agreement_id,
                    r.version,
                    r.revoked_by,
                    r.reason,
                    _aware(r.revoked_at),
                    r.digest,
                )
                for r in rows
            ]

    @_translated
    def record_revocation(
        self, record: RevocationRecord, document: dict[str, Any], signature: str, now: dt.datetime
    ) -> bool:
        t = agreement_revocations
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(t).values(
                        digest=record.digest,
                        agreement_id=record.agreement_id,
                        version=record.version,
                        revoked_by=record.revoked_by,
                        reason=record.reason,
                        revoked_at=record.revoked_at,
                        document=document,
                        signature=signature,
                        first_seen_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    @_translated
    def highest_versions(self) -> dict[str, VersionSeen]:
        t = agreement_versions
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.c.agreement_id, t.c.version, t.c.digest, t.c.content))
            return {
                r.agreement_id: VersionSeen(r.agreement_id, r.version, r.digest, r.content)
                for r in rows
            }

    @_translated
    def state(self) -> AgreementState:
        with self._engine.connect() as conn:
            digests = conn.execute(select(agreement_revocations.c.digest)).scalars()
            t = agreement_versions
            versions = conn.execute(select(t.c.agreement_id, t.c.version))
            d = agreement_drafts
            stored = conn.execute(select(d.c.id).where(d.c.status.in_(SIGNED_STATUSES)))
            return AgreementState(
                frozenset(digests),
                frozenset((r.agreement_id, r.version) for r in versions),
                frozenset(stored.scalars()),
            )

    @_translated
    def stored_agreements(self) -> list[StoredAgreement]:
        d, s = agreement_drafts, agreement_draft_signatures
        with self._engine.connect() as conn:
            drafts = conn.execute(
                select(d.c.id, d.c.yaml, d.c.digest, d.c.previous_digest)
                .where(d.c.status.in_(SIGNED_STATUSES))
                .order_by(d.c.id)
            ).all()
            signed = conn.execute(
                select(s.c.draft_id, s.c.party_id, s.c.digest, s.c.jws).where(
                    s.c.action.in_(("sign", "renew")),
                    s.c.draft_id.in_([r.id for r in drafts]),
                )
            ).all()
        out = []
        for row in drafts:
            tokens = {
                sig.party_id: sig.jws
                for sig in signed
                if sig.draft_id == row.id and sig.digest == row.digest
            }
            out.append(StoredAgreement(row.id, row.yaml, row.previous_digest, tokens))
        return out

    @_translated
    def record_version(self, seen: VersionSeen, now: dt.datetime) -> None:
        t = agreement_versions
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(t).values(
                        agreement_id=seen.agreement_id,
                        version=seen.version,
                        digest=seen.digest,
                        content=dict(seen.content) if seen.content is not None else None,
                        first_seen_at=now,
                    )
                )
        except IntegrityError:
            with self._engine.begin() as conn:
                conn.execute(
                    update(t)
                    .where(t.c.agreement_id == seen.agreement_id, t.c.version < seen.version)
                    .values(
                        version=seen.version,
                        digest=seen.digest,
                        content=dict(seen.content) if seen.content is not None else None,
                        first_seen_at=now,
                    )
                )


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class ImportedKey:
    """One key found by :func:`import_party_keys`."""

    party_id: str
    kid: str
    file: str
    outcome: Literal["added", "unchanged"]


def read_jwks_dir(keys_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(party id, file, public jwk)`` of every ``<party-id>.jwks.json`` file in ``keys_dir``.

    Raises :class:`UnusableKeyError` for unreadable files or private key material.
    """
    found: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted(keys_dir.glob("*.jwks.json")):
        party_id = path.name.removesuffix(".jwks.json")
        try:
            jwks = json.loads(path.read_text(encoding="utf-8"))
            keys = jwks["keys"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UnusableKeyError(f"{path}: not a JWKS file ({e})") from e
        if not isinstance(keys, list):
            raise UnusableKeyError(f"{path}: 'keys' is not a list")
        for jwk in keys:
            if not isinstance(jwk, dict):
                raise UnusableKeyError(f"{path}: a key is not an object")
            if "d" in jwk:
                raise UnusableKeyError(
                    f"{path}: holds private key material; import public keys only"
                )
            found.append((party_id, str(path), jwk))
    return found


def import_party_keys(
    engine: Engine,
    keys_dir: Path,
    actor: str,
    *,
    known_parties: Collection[str] | None = None,
    demo: bool = False,
    now: dt.datetime | None = None,
) -> list[ImportedKey]:
    """Import every ``<party-id>.jwks.json`` under ``keys_dir`` into the trust store.

    Each new key is written with an ``admin_events`` row (action ``parties.import-key``) in the
    same transaction. Keys already trusted for the same party are left unchanged. Refuses, before
    writing anything: demo keys outside demo mode (:class:`DemoKeyRefusedError`), parties not in
    ``known_parties`` (default: the ``parties`` table; :class:`UnknownPartyError`), a key already
    trusted for another party (:class:`KeyConflictError`), unusable files
    (:class:`UnusableKeyError`). Database failures raise :class:`AgreementStoreUnavailableError`.
    """
    now = now or dt.datetime.now(dt.UTC)
    found = [(party, file, jwk, thumbprint(jwk)) for party, file, jwk in read_jwks_dir(keys_dir)]
    refuse_published_keys([kid for _, _, _, kid in found], demo=demo)
    try:
        try:
            return _import(engine, found, actor, known_parties, now)
        except IntegrityError:
            # Instances started together on one database import the same files at once: the
            # one that lost the race finds the keys trusted now, and leaves them unchanged.
            return _import(engine, found, actor, known_parties, now)
    except SQLAlchemyError as e:
        raise AgreementStoreUnavailableError(
            f"cannot write the trust store ({type(e).__name__}); run the migrations?"
        ) from e


def _import(
    engine: Engine,
    found: list[tuple[str, str, dict[str, Any], str]],
    actor: str,
    known_parties: Collection[str] | None,
    now: dt.datetime,
) -> list[ImportedKey]:
    results: list[ImportedKey] = []
    with engine.begin() as conn:
        if known_parties is None:
            known_parties = set(conn.execute(select(parties.c.id)).scalars())
        for party, file, _, _ in found:
            if party not in known_parties:
                raise UnknownPartyError(f"{file}: unknown party {party!r} (add the party first)")
        existing = {
            r.kid: r.party_id for r in conn.execute(select(party_keys.c.kid, party_keys.c.party_id))
        }
        holders = set(existing.values())
        for party, file, jwk, kid in found:
            if kid not in existing and party in holders:
                raise KeyConflictError(
                    f"{file}: {party!r} already has a signing key; a new one is registered "
                    "only by a rotation statement signed with its current key"
                )
            if kid in existing:
                if existing[kid] != party:
                    raise KeyConflictError(
                        f"{file}: key {kid} is already trusted for {existing[kid]!r}"
                    )
                results.append(ImportedKey(party, kid, file, "unchanged"))
                continue
            public = {k: v for k, v in jwk.items() if k in {"kty", "crv", "x", "y", "alg", "use"}}
            public["kid"] = kid
            conn.execute(
                insert(party_keys).values(
                    kid=kid,
                    party_id=party,
                    jwk=public,
                    source=file,
                    imported_at=now,
                    imported_by=actor,
                )
            )
            log_admin_event(
                conn,
                at=now,
                actor=actor,
                action="parties.import-key",
                target=party,
                details={"kid": kid, "file": file, "kty": jwk.get("kty"), "crv": jwk.get("crv")},
            )
            existing[kid] = party
            results.append(ImportedKey(party, kid, file, "added"))
    return results
