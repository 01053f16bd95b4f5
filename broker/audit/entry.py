"""The audit entry: what is logged about one exchange (or admin action, simulation, audit read).

No I/O apart from drawing random salts. An :class:`AuditEntry` is *sealed* (:func:`seal`)
before it is appended:

- personal fields (subject pseudonym, user id, justification, case reference) are replaced in the
  leaf by commitments ``SHA-256(salt || UTF-8 value)`` with a fresh 16-byte salt each; the values
  and salts are stored beside the leaf and can later be redacted without changing the leaf hash;
- everything else is in the leaf in clear, as RFC 8785 canonical JSON (the *body*);
- the search columns are derived from the body by :func:`search_values`, the same function the
  verifier uses to re-derive them, so an edited search column is detected.

The leaf bytes add the log index: ``{"entry":<body>,"index":<n>}``. Since ``"entry" < "index"``
this concatenation *is* the RFC 8785 form of that object, and it lets the leader assign indexes
without re-canonicalising the body.

The record that was released is never logged: only ``SHA-256(salt || RFC 8785(record))``
(:func:`digest_released_record`), salted because a yes/no answer has few possible values. The salt
goes to the recipient in the receipt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import rfc8785

from broker.audit.errors import AuditEntryError
from broker.audit.randomness import random_bytes
from broker.core.projection import WithheldField
from broker.core.pseudonym import Pseudonym

SCHEMA_VERSION: Final = 1
SALT_BYTES: Final = 16

KINDS: Final = frozenset({"exchange", "admin", "simulation", "audit-read", "redaction"})
DECISIONS: Final = frozenset({"allow", "deny", "held", "error", "not_found"})
"""``not_found``: allowed by the policy, but the source holds no such subject; nothing released.
Entries written before this value existed say ``allow`` with ``source_outcome`` ``not_found``:
read both through :func:`outcome_of`."""
SOURCE_OUTCOMES: Final = frozenset({"ok", "not_found", "error", "timeout", "not_fetched"})

#: The personal fields, committed to by salted hashes; their values and salts are redactable.
PERSONAL_FIELDS: Final = ("subject_pseudonym", "user_id", "justification", "case_reference")

#: A JSON value (what obligations and details may hold).
JsonValue = Any

_MAX_SAFE_INT: Final = 2**53 - 1


def new_exchange_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(random_bytes(10), "big")
    value = (ms & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & (2**62 - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_time_ms(ms: int) -> str:
    """``2026-11-29T10:33:20.123Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time_ms(text: str) -> int:
    """Inverse of :func:`format_time_ms` (accepts any ISO 8601 time with a zone)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("time without a zone")
    return round(dt.timestamp() * 1000)


@dataclass(frozen=True)
class AgreementRef:
    """Which agreement version governed the exchange."""

    id: str
    version: str
    digest: str
    """The agreement's content digest (hex or ``sha256:...``), as its signers signed it."""


@dataclass(frozen=True, repr=False)
class ReleasedDigest:
    """``SHA-256(salt || RFC 8785(record))`` of the released record, and its salt."""

    digest: str
    salt: bytes

    def __repr__(self) -> str:
        return f"ReleasedDigest(digest={self.digest!r})"


def digest_released_record(record: JsonValue, salt: bytes | None = None) -> ReleasedDigest:
    """Digest the released record (never logged itself). Raises :class:`AuditEntryError`."""
    salt = random_bytes(SALT_BYTES) if salt is None else salt
    try:
        canonical = canonical_json(record)
    except AuditEntryError as e:
        raise AuditEntryError(f"released record is not canonicalisable JSON: {e.detail}") from e
    return ReleasedDigest(hashlib.sha256(salt + canonical).hexdigest(), salt)


def check_released_record(record: JsonValue, salt: bytes, digest: str) -> bool:
    """True when ``record`` is what was released under ``digest`` (for either side to prove)."""
    return digest_released_record(record, salt).digest == digest


@dataclass(frozen=True)
class AuditEntry:
    """One logged event. Only ``kind`` is always required; exchanges fill in the rest.

    Personal fields: ``subject``, ``user_id``, ``justification``, ``case_reference``.
    """

    kind: str = "exchange"
    exchange_id: str = field(default_factory=new_exchange_id)
    time_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    """UTC milliseconds since the Unix epoch."""
    client_id: str | None = None
    party_id: str | None = None
    """The requesting party (the client's party)."""
    user_id: str | None = None
    user_role: str | None = None
    agreement: AgreementRef | None = None
    purpose: str | None = None
    lawful_basis: tuple[str, ...] = ()
    dataset: str | None = None
    subject: Pseudonym | None = None
    requested_fields: tuple[str, ...] = ()
    released_fields: tuple[str, ...] = ()
    withheld_fields: tuple[WithheldField, ...] = ()
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    break_glass: bool = False
    justification: str | None = None
    case_reference: str | None = None
    obligations: tuple[JsonValue, ...] = ()
    policy_revision: str | None = None
    source_outcome: str | None = None
    released: ReleasedDigest | None = None
    latency_us: int | None = None
    """Time from request to decision/answer, microseconds."""
    details: Mapping[str, JsonValue] | None = None
    """For admin actions, simulations, audit reads, redactions: what was done (no personal data)."""


@dataclass(frozen=True)
class SearchColumns:
    """The columns kept beside the leaf for searching; always re-derivable from the body."""

    exchange_id: str
    kind: str
    at_ms: int
    agreement_id: str | None
    party_id: str | None
    client_id: str | None
    dataset: str | None
    decision: str | None
    break_glass: bool


@dataclass(frozen=True, repr=False)
class SealedEntry:
    """An entry ready to append: canonical body, search columns, personal values with salts."""

    body: bytes
    search: SearchColumns
    personal: Mapping[str, tuple[str, bytes]]
    """Field name -> (value, salt) for each personal field that has a value."""
    record_salt: bytes | None


def _personal_values(entry: AuditEntry) -> dict[str, str | None]:
    return {
        "subject_pseudonym": entry.subject.value if entry.subject else None,
        "user_id": entry.user_id,
        "justification": entry.justification,
        "case_reference": entry.case_reference,
    }


def commitment(value: str, salt: bytes) -> str:
    """``SHA-256(salt || UTF-8 value)`` as hex: what the leaf holds for a personal field."""
    return hashlib.sha256(salt + value.encode("utf-8")).hexdigest()


def _check(entry: AuditEntry) -> None:
    bad: list[str] = []
    if entry.kind not in KINDS:
        bad.append(f"kind {entry.kind!r}")
    if entry.decision is not None and entry.decision not in DECISIONS:
        bad.append(f"decision {entry.decision!r}")
    if entry.source_outcome is not None and entry.source_outcome not in SOURCE_OUTCOMES:
        bad.append(f"source_outcome {entry.source_outcome!r}")
    if entry.kind == "exchange" and entry.decision is None:
        bad.append("an exchange needs a decision")
    if type(entry.time_ms) is not int or not 0 <= entry.time_ms <= _MAX_SAFE_INT:
        bad.append("time_ms")
    if entry.latency_us is not None and (
        type(entry.latency_us) is not int or not 0 <= entry.latency_us <= _MAX_SAFE_INT
    ):
        bad.append("latency_us")
    if type(entry.break_glass) is not bool:
        bad.append("break_glass")
    if bad:
        raise AuditEntryError("audit entry invalid: " + ", ".join(bad))


def body_dict(entry: AuditEntry, commitments: Mapping[str, str | None]) -> dict[str, JsonValue]:
    """The leaf body as a JSON object (personal fields as commitments only)."""
    return {
        "v": SCHEMA_VERSION,
        "kind": entry.kind,
        "exchange_id": entry.exchange_id,
        "time": format_time_ms(entry.time_ms),
        "client_id": entry.client_id,
        "party_id": entry.party_id,
        "user_role": entry.user_role,
        "agreement": None
        if entry.agreement is None
        else {
            "id": entry.agreement.id,
            "version": entry.agreement.version,
            "digest": entry.agreement.digest,
        },
        "purpose": entry.purpose,
        "lawful_basis": list(entry.lawful_basis),
        "dataset": entry.dataset,
        "subject_key_version": entry.subject.key_version if entry.subject else None,
        "requested_fields": list(entry.requested_fields),
        "released_fields": list(entry.released_fields),
        "withheld_fields": [{"field": w.field, "reason": w.reason} for w in entry.withheld_fields],
        "decision": entry.decision,
        "reasons": list(entry.reasons),
        "break_glass": entry.break_glass,
        "obligations": list(entry.obligations),
        "policy_revision": entry.policy_revision,
        "source_outcome": entry.source_outcome,
        "released_digest": entry.released.digest if entry.released else None,
        "latency_us": entry.latency_us,
        "details": None if entry.details is None else dict(entry.details),
        "commitments": dict(commitments),
    }


def search_values(body: Mapping[str, JsonValue]) -> tuple[Any, ...]:
    """The search columns derived from a body, in :class:`SearchColumns` field order.

    The one derivation used at append and again at verification. Raises ``KeyError``,
    ``TypeError`` or ``ValueError`` for a body that is not one of ours.
    """
    agreement = body["agreement"]
    return (
        body["exchange_id"],
        body["kind"],
        parse_time_ms(body["time"]),
        None if agreement is None else agreement["id"],
        body["party_id"],
        body["client_id"],
        body["dataset"],
        body["decision"],
        bool(body["break_glass"]),
    )


def search_columns(body: Mapping[str, JsonValue]) -> SearchColumns:
    """:func:`search_values` as a :class:`SearchColumns`."""
    return SearchColumns(*search_values(body))


def _needs_full_jcs(value: JsonValue) -> bool:
    """True when ``orjson`` might differ from RFC 8785 for ``value`` (floats, big ints,
    non-ASCII keys); raises :class:`AuditEntryError` for values that are not JSON at all."""
    if value is None or isinstance(value, bool | str):
        return False
    if isinstance(value, int):
        return not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple):
        return any(_needs_full_jcs(v) for v in value)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise AuditEntryError(f"JSON object key {k!r} is not a string")
            if not k.isascii() or _needs_full_jcs(v):
                return True
        return False
    raise AuditEntryError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: JsonValue, *, simple: bool | None = None) -> bytes:
    """RFC 8785 bytes of ``value``.

    For the common case (ASCII keys, no floats, integers within 2**53) ``orjson`` with sorted keys
    produces exactly the RFC 8785 bytes (a property test checks it) and is far faster;
    anything else goes through the ``rfc8785`` package. ``simple`` lets a caller that knows the
    value's shape skip the scan. Raises :class:`AuditEntryError`.
    """
    if simple is None:
        simple = not _needs_full_jcs(value)
    if simple:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            pass  # lone surrogates and the like: let rfc8785 decide and explain
    try:
        return rfc8785.dumps(value)
    except Exception as e:
        raise AuditEntryError(f"audit entry is not canonicalisable JSON: {e}") from e


def seal(entry: AuditEntry) -> SealedEntry:
    """Validate the entry, draw salts, commit to the personal fields and canonicalise the body.

    Raises :class:`AuditEntryError`.
    """
    _check(entry)
    values = _personal_values(entry)
    salts = random_bytes(SALT_BYTES * len(PERSONAL_FIELDS))
    personal: dict[str, tuple[str, bytes]] = {}
    commitments: dict[str, str | None] = {}
    for i, name in enumerate(PERSONAL_FIELDS):
        value = values[name]
        if value is None:
            commitments[name] = None
            continue
        salt = salts[i * SALT_BYTES : (i + 1) * SALT_BYTES]
        personal[name] = (value, salt)
        commitments[name] = commitment(value, salt)
    body = body_dict(entry, commitments)
    # Every field but obligations and details is typed (str, bool, small int, lists of str).
    simple = not (_needs_full_jcs(list(entry.obligations)) or _needs_full_jcs(entry.details))
    return SealedEntry(
        body=canonical_json(body, simple=simple),
        search=search_columns(body),
        personal=personal,
        record_salt=entry.released.salt if entry.released else None,
    )


def leaf_bytes(body: bytes, index: int) -> bytes:
    """The leaf: RFC 8785 form of ``{"entry": body, "index": index}``."""
    return b'{"entry":' + body + b',"index":' + str(index).encode() + b"}"


def outcome_of(body: Mapping[str, JsonValue]) -> str | None:
    """What happened, as every reader shows it: the decision, except that a subject not found
    at the source is ``not_found`` (also in entries that logged it as ``allow``)."""
    if body.get("decision") == "allow" and body.get("source_outcome") == "not_found":
        return "not_found"
    decision = body.get("decision")
    return None if decision is None else str(decision)


def parse_leaf(leaf: bytes) -> tuple[int, dict[str, JsonValue]]:
    """``(index, body)`` of a stored leaf. Raises ``ValueError`` when it is not one of ours."""
    doc = orjson.loads(leaf)
    if not isinstance(doc, dict) or set(doc) != {"entry", "index"}:
        raise ValueError("leaf is not {entry, index}")
    index, body = doc["index"], doc["entry"]
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(body, dict):
        raise ValueError("leaf has a bad index or entry")
    return index, body
