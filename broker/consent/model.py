"""Consent records and the pure rules that read them (no I/O).

A :class:`ConsentRecord` follows the shape of the HL7 FHIR R4 ``Consent`` resource: a status
(``active`` / ``inactive``), one ``permit`` provision with two actors (the party that shares,
``from_party``, and the party that receives, ``to_party``), a purpose, a period, and the data it
covers (datasets, optionally narrowed to document types). The subject is only ever a keyed
pseudonym (:mod:`broker.core.pseudonym`); the identifier in clear is never stored.

:func:`evaluate` is the whole consent condition: a record counts when it is active, ``now`` is
inside its period, and actors, purpose and data match. A withdrawn record stops counting at the
instant of withdrawal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

from broker.policy.input import ConsentStatus

#: Identifiers of one person: a consent (and an access report) is never about an address.
PERSONAL_IDENTIFIERS: Final[tuple[str, ...]] = ("nhs_number", "person_id")

RecordStatus = Literal["active", "inactive"]
CollectionMethod = Literal["written", "verbal", "electronic", "portal"]
COLLECTION_METHODS: Final[tuple[str, ...]] = get_args(CollectionMethod)

#: What a consent check found, richer than the policy's :data:`ConsentStatus`.
ConsentState = Literal["granted", "withdrawn", "expired", "not_started", "none"]

#: How each state reads in the policy input: only a consent in force is ``given``.
POLICY_STATUS: Final[dict[str, ConsentStatus]] = {
    "granted": "given",
    "withdrawn": "withdrawn",
    "expired": "none",
    "not_started": "none",
    "none": "none",
}


@dataclass(frozen=True)
class ConsentQuery:
    """What one request needs consent for: the parties, purpose and data of the request, and the
    subject's pseudonyms (under every key version, so a consent recorded before a key rotation
    still counts). The one shape in which the exchange asks (``ConsentPort.status``), the
    consent service checks and a record is matched (:meth:`ConsentRecord.covers`)."""

    from_party: str
    """The party that holds the data and would share it."""
    to_party: str
    """The party asking for it."""
    purpose: str
    dataset: str
    document_type: str | None = None
    subject_pseudonyms: tuple[str, ...] = ()
    """Empty where the records are already narrowed to the subject (:func:`evaluate`)."""


@dataclass(frozen=True)
class ConsentRecord:
    """One consent as stored. Times are UTC milliseconds since the epoch."""

    id: str
    status: RecordStatus
    agreement_id: str
    agreement_version: int
    subject_type: str
    """The kind of identifier (``nhs_number``, ``person_id``); never its value."""
    subject_pseudonym: str
    subject_key_version: str
    from_party: str
    """The party that holds the data and shares it (FHIR actor role: custodian)."""
    to_party: str
    """The party that receives it (FHIR actor role: information recipient)."""
    purpose: str
    datasets: tuple[str, ...]
    document_types: tuple[str, ...]
    """Empty: every document of the datasets; else only these types (identity, income, ...)."""
    period_start_ms: int
    period_end_ms: int | None
    """Exclusive; ``None`` means until withdrawn."""
    collection_method: CollectionMethod
    recorded_by_name: str
    """The named person who took the consent."""
    recorded_by_role: str | None
    recorder_party: str
    recorder_client: str
    recorded_at_ms: int
    withdrawn_at_ms: int | None = None
    withdrawn_by_client: str | None = None
    withdrawal_reason: str | None = None

    def covers(self, query: ConsentQuery) -> bool:
        """Actors, purpose and data match (subject, status and period are not looked at)."""
        asked = (query.from_party, query.to_party, query.purpose)
        if (self.from_party, self.to_party, self.purpose) != asked:
            return False
        if query.dataset not in self.datasets:
            return False
        if self.document_types:
            # A consent narrowed to some document types covers a request only when it names one
            # of them: an unnamed type could be any document (fail closed).
            return query.document_type is not None and query.document_type in self.document_types
        return True

    def state_at(self, now_ms: int) -> ConsentState:
        """This record's state at ``now_ms``."""
        if self.status == "inactive" or (
            self.withdrawn_at_ms is not None and self.withdrawn_at_ms <= now_ms
        ):
            return "withdrawn"
        if now_ms < self.period_start_ms:
            return "not_started"
        if self.period_end_ms is not None and now_ms >= self.period_end_ms:
            return "expired"
        return "granted"


@dataclass(frozen=True)
class ConsentCheck:
    """The outcome of a consent check: the state and, when granted, the record relied on."""

    state: ConsentState
    consent_id: str | None = None

    @property
    def policy_status(self) -> ConsentStatus:
        """The value for ``PolicyRequest.consent``."""
        return POLICY_STATUS[self.state]


# When several records cover a request, the most permissive state that holds wins: a fresh
# consent recorded after an old one was withdrawn grants again.
_PRECEDENCE: Final[tuple[ConsentState, ...]] = (
    "granted",
    "withdrawn",
    "expired",
    "not_started",
    "none",
)


def evaluate(records: Iterable[ConsentRecord], query: ConsentQuery, *, now_ms: int) -> ConsentCheck:
    """The consent condition for ``query`` over ``records`` (already narrowed to the subject)."""
    best: ConsentCheck = ConsentCheck("none")
    for record in records:
        if not record.covers(query):
            continue
        state = record.state_at(now_ms)
        if _PRECEDENCE.index(state) < _PRECEDENCE.index(best.state):
            best = ConsentCheck(state, record.id if state == "granted" else None)
    return best
