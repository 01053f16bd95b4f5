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

#: What a consent check found, richer than the policy's :data:`ConsentStatus`. ``not_covered``:
#: a consent in force for the request's parties, purpose and dataset, narrowed to document types
#: that do not include every type the request would release.
ConsentState = Literal["granted", "not_covered", "withdrawn", "expired", "not_started", "none"]

#: How each state reads in the policy input: only a consent in force is ``given``.
POLICY_STATUS: Final[dict[str, ConsentStatus]] = {
    "granted": "given",
    "not_covered": "not_covered",
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
    document_types: tuple[str, ...] | None = None
    """The types of the documents the request would release, on a dataset of typed documents
    (``document.type``; empty when the subject has none); ``None`` for a dataset without."""
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
    given_at_ms: int | None = None
    """When the citizen gave it, if before it was recorded (on paper); ``None``: when recorded."""
    evidence_reference: str | None = None
    """Where the evidence of a consent given before it was recorded is kept (a form's number)."""

    def applies(self, query: ConsentQuery) -> bool:
        """Actors, purpose and dataset match (subject, status, period and document types are not
        looked at)."""
        asked = (query.from_party, query.to_party, query.purpose)
        if (self.from_party, self.to_party, self.purpose) != asked:
            return False
        return query.dataset in self.datasets

    def covers_documents(self, query: ConsentQuery) -> bool:
        """A consent narrowed to document types covers a request on a dataset of typed documents
        only when every type the request would release is one of them."""
        if not self.document_types or query.document_types is None:
            return True
        return set(query.document_types) <= set(self.document_types)

    def covers(self, query: ConsentQuery) -> bool:
        """Actors, purpose, dataset and document types match."""
        return self.applies(query) and self.covers_documents(query)

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
    covered_document_types: tuple[str, ...] = ()
    """``not_covered``: the document types the consent in force covers (for the reason)."""

    @property
    def policy_status(self) -> ConsentStatus:
        """The value for ``PolicyRequest.consent``."""
        return POLICY_STATUS[self.state]


# When several records cover a request, the most permissive state that holds wins: a fresh
# consent recorded after an old one was withdrawn grants again.
_PRECEDENCE: Final[tuple[ConsentState, ...]] = (
    "granted",
    "not_covered",
    "withdrawn",
    "expired",
    "not_started",
    "none",
)


def evaluate(records: Iterable[ConsentRecord], query: ConsentQuery, *, now_ms: int) -> ConsentCheck:
    """The consent condition for ``query`` over ``records`` (already narrowed to the subject)."""
    best: ConsentCheck = ConsentCheck("none")
    for record in records:
        if not record.applies(query):
            continue
        state = record.state_at(now_ms)
        if state == "granted" and not record.covers_documents(query):
            state = "not_covered"
        if _PRECEDENCE.index(state) < _PRECEDENCE.index(best.state):
            best = ConsentCheck(
                state,
                record.id if state == "granted" else None,
                record.document_types if state == "not_covered" else (),
            )
    return best
