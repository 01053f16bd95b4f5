"""An agreement's status, computed (never stored) from the document, its signatures, the trust
store, the recorded revocations, the highest version seen, and ``now``. Pure, no I/O.

Statuses, in the order they are decided:

- ``revoked``: a verified revocation by a party covers this version (recorded revocations stay
  in force even when the revocation file is deleted);
- ``invalid``: the document fails validation, a signature fails to verify or is by a key that is
  not the named party's, or a later version already in effect (or this version with other
  content) was already seen;
- ``draft``: valid, but some party's signature is missing;
- ``pending``: signed by every party, before ``effective_from``;
- ``expired``: signed by every party, after ``expires_on`` (its last day in force);
- ``active``: signed by every party and inside its validity. Past ``review_by`` it stays active
  and ``review_due`` is set.

Only ``active`` agreements may be compiled into policy. Dates are UK local dates (Europe/London).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from broker.agreements.model import Agreement
from broker.agreements.parsing import Problem
from broker.agreements.signing import SignatureCheck, TrustSnapshot, verify_detached

Status = Literal["draft", "pending", "active", "expired", "revoked", "invalid"]
UK = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class RevocationRecord:
    """A verified revocation: versions up to ``version`` of ``agreement_id`` are revoked."""

    agreement_id: str
    version: int
    revoked_by: str
    reason: str
    revoked_at: dt.datetime
    digest: str


@dataclass(frozen=True)
class VersionSeen:
    """The highest fully signed version of an agreement ever seen, and its digest."""

    agreement_id: str
    version: int
    digest: str
    content: Mapping[str, Any] | None = field(default=None, compare=False)
    """The signed canonical content, when recorded: lets verify name what changed since."""


@dataclass(frozen=True)
class AgreementState:
    """What the agreement state store holds that decides statuses: the digests of the recorded
    revocations and the highest version seen of each agreement. Both only ever grow, so a store
    that holds anything other than what a load was judged against has moved on since."""

    revocations: frozenset[str] = frozenset()
    versions: frozenset[tuple[str, int]] = frozenset()
    stored: frozenset[str] = frozenset()
    """The ids of the agreements held in the database signed by every party (drafts that came
    through the API): one more signed there makes every instance rebuild."""

    @classmethod
    def of(
        cls,
        revocations: Sequence[RevocationRecord],
        versions: Mapping[str, VersionSeen],
        stored: frozenset[str] = frozenset(),
    ) -> AgreementState:
        return cls(
            frozenset(r.digest for r in revocations),
            frozenset((v.agreement_id, v.version) for v in versions.values()),
            stored,
        )


def changed_places(old: Any, new: Any, place: str = "", limit: int = 8) -> list[str]:
    """Where ``new`` differs from ``old`` (JSON values), as ``place: old -> new`` lines."""
    out: list[str] = []

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    def walk(a: Any, b: Any, at: str) -> None:
        if len(out) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key, _ABSENT), b.get(key, _ABSENT), f"{at}.{key}" if at else key)
            return
        if isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                walk(a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT, f"{at}[{i}]")
            return
        if a is _ABSENT:
            out.append(f"{at or '(document)'}: added {short(b)}")
        elif b is _ABSENT:
            out.append(f"{at or '(document)'}: removed {short(a)}")
        else:
            out.append(f"{at or '(document)'}: {short(a)} -> {short(b)}")

    walk(old, new, place)
    return out


_ABSENT = object()


def _effective_from(seen: VersionSeen) -> dt.date | None:
    try:
        value = seen.content["validity"]["effective_from"]  # type: ignore[index]
        return dt.date.fromisoformat(value)
    except (TypeError, KeyError, ValueError):
        return None


@dataclass(frozen=True)
class AgreementStatus:
    """The computed state of one agreement file."""

    file: str
    agreement_id: str | None
    version: int | None
    digest: str | None
    status: Status
    reasons: tuple[str, ...]
    review_due: bool
    signatures: tuple[SignatureCheck, ...]

    @property
    def fully_signed(self) -> bool:
        """Every party's signature is present and valid (whatever the dates say)."""
        return self.status in ("pending", "active", "expired")


def uk_date(now: dt.datetime) -> dt.date:
    """The UK local date of an aware ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UK).date()


SignedBytes = Callable[[str], bytes]
"""The bytes a party's signature covers, by party id (an agreement held in the database is
signed through a statement: ``broker.agreements.statements``)."""


def check_signatures(
    agreement: Agreement,
    content: bytes,
    signatures: Mapping[str, str],
    trust: TrustSnapshot,
    signed_bytes: SignedBytes | None = None,
) -> tuple[list[SignatureCheck], list[str], list[str]]:
    """Checks of every filed signature; returns (checks, missing party ids, problems).

    A signature covers ``content``, or ``signed_bytes(party)`` when given."""
    checks: list[SignatureCheck] = []
    problems: list[str] = []
    party_ids = [p.id for p in agreement.parties]
    for party_id, token in sorted(signatures.items()):
        if party_id not in party_ids:
            problems.append(f"signature filed for {party_id!r}, which is not a party")
            continue
        covered = signed_bytes(party_id) if signed_bytes is not None else content
        check = verify_detached(covered, token, party_id, trust)
        checks.append(check)
        if not check.valid:
            problems.append(f"signature of {party_id!r}: {check.reason}")
    missing = [p for p in party_ids if p not in signatures]
    return checks, missing, problems


def evaluate(
    *,
    file: str,
    agreement: Agreement | None,
    problems: Sequence[Problem],
    signatures: Mapping[str, str],
    trust: TrustSnapshot,
    revocations: Sequence[RevocationRecord],
    highest_seen: Mapping[str, VersionSeen],
    now: dt.datetime,
    signed_bytes: SignedBytes | None = None,
) -> AgreementStatus:
    """The status of one agreement file. ``problems`` are its validation problems (may be empty).
    ``signed_bytes``: what each party's signature covers, when not the agreement's content."""
    if agreement is None:
        return AgreementStatus(
            file,
            None,
            None,
            None,
            "invalid",
            tuple(str(p) for p in problems) or ("unreadable",),
            False,
            (),
        )
    content = agreement.canonical_bytes()
    digest = agreement.digest()

    def result(
        status: Status,
        reasons: Sequence[str],
        checks: Sequence[SignatureCheck] = (),
        review_due: bool = False,
    ) -> AgreementStatus:
        return AgreementStatus(
            file,
            agreement.id,
            agreement.version,
            digest,
            status,
            tuple(reasons),
            review_due,
            tuple(checks),
        )

    revoked = [
        r for r in revocations if r.agreement_id == agreement.id and r.version >= agreement.version
    ]
    if revoked:
        return result(
            "revoked",
            [
                f"revoked by {r.revoked_by!r} at {r.revoked_at.isoformat()}: {r.reason}"
                for r in revoked
            ],
        )
    if problems:
        return result("invalid", [f"{p.place or '(document)'}: {p.reason}" for p in problems])

    checks, missing, bad = check_signatures(agreement, content, signatures, trust, signed_bytes)
    seen = highest_seen.get(agreement.id)
    if bad:
        if seen and seen.version == agreement.version and seen.digest != digest and seen.content:
            changes = changed_places(seen.content, agreement.content())
            bad.append(f"changed since version {seen.version} was signed: " + "; ".join(changes))
        return result("invalid", bad, checks)
    today = uk_date(now)
    notes: list[str] = []
    if seen is not None and seen.version > agreement.version:
        # A later version signed in advance replaces this one only from its own effective date,
        # so that sharing does not stop in between. Unknown date: superseded at once (fail closed).
        takes_effect = _effective_from(seen)
        if takes_effect is None or today >= takes_effect:
            return result(
                "invalid",
                [
                    f"superseded: version {seen.version} has already been seen; an older version "
                    "never comes back into force"
                ],
                checks,
            )
        notes.append(f"version {seen.version} is signed and replaces this one on {takes_effect}")
    if missing:
        return result(
            "draft", [f"awaiting the signature of {', '.join(repr(m) for m in missing)}"], checks
        )
    if seen is not None and seen.version == agreement.version and seen.digest != digest:
        return result(
            "invalid",
            [
                f"version {agreement.version} was already seen with other content ({seen.digest}); "
                "a changed agreement needs a new version number and new signatures"
            ],
            checks,
        )
    validity = agreement.validity
    if today < validity.effective_from:
        return result(
            "pending", [f"signed by every party; takes effect on {validity.effective_from}"], checks
        )
    if today > validity.expires_on:
        return result("expired", [f"expired: its last day was {validity.expires_on}"], checks)
    review_due = today > validity.review_by
    reasons = ["signed by every party and in force", *notes]
    if review_due:
        reasons.append(f"review was due by {validity.review_by}")
    return result("active", reasons, checks, review_due)
