"""What a provider is told about one exchange of its data: the value the exchange pipeline
builds and the outbox (:mod:`broker.notify.outbox`) stores. No database library here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.core.pseudonym import Pseudonym

EVENT_RECORD_SHARED = "exchange.record-shared"
"""A provider's record was released to a recipient (the flow says ``notify_provider``)."""


@dataclass(frozen=True)
class ProviderNotice:
    """What a provider is told about one exchange of its data (no identifier in clear)."""

    exchange_id: str
    provider_party: str
    """The party to notify: the dataset's provider (``Obligations.notify_provider``)."""
    occurred_at_ms: int
    agreement_id: str
    purpose: str
    dataset: str
    requesting_party: str
    requesting_client: str
    summary: str
    """One line a caseworker reads, e.g. "Emergency Department safeguarding at Calderbridge
    Hospitals NHS Foundation Trust checked this child's child protection record"."""
    flow_id: str | None = None
    requester_role: str | None = None
    break_glass: bool = False
    released_fields: tuple[str, ...] = ()
    subject_pseudonym: Pseudonym | None = None
    """The broker's pseudonym of the subject: never sent (it is the value governance searches
    show, so a provider told it next to the identifier could map pseudonyms back to people).
    The outbox derives the recipient's own ``subject_reference`` from it."""
    event_type: str = EVENT_RECORD_SHARED

    def to_payload(self, subject_reference: str | None = None) -> dict[str, Any]:
        """The stored payload (JSON-ready; the sealed identifier is added at delivery).
        ``subject_reference``: the recipient's own reference to the subject (see
        :meth:`broker.notify.sealing.SubjectSealer.reference`)."""
        return {
            "exchange_id": self.exchange_id,
            "occurred_at_ms": self.occurred_at_ms,
            "agreement_id": self.agreement_id,
            "flow_id": self.flow_id,
            "purpose": self.purpose,
            "dataset": self.dataset,
            "requesting_party": self.requesting_party,
            "requesting_client": self.requesting_client,
            "requester_role": self.requester_role,
            "break_glass": self.break_glass,
            "released_fields": list(self.released_fields),
            "summary": self.summary,
            "subject_reference": subject_reference,
        }


def default_summary(requesting_system: str, requesting_party: str, dataset: str) -> str:
    """The notice's one line when the pipeline has nothing better, from the names the registry
    holds (e.g. "Emergency Department safeguarding at Calderbridge Hospitals NHS Foundation Trust
    received this person's ccc.child-protection record")."""
    return f"{requesting_system} at {requesting_party} received this person's {dataset} record"
