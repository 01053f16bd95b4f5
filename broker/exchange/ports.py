"""What the exchange service talks to (ports) and what it answers (values).

The consent port is :class:`broker.consent.service.ConsentPort` (one definition).

The service (:mod:`broker.exchange.service`) orchestrates; these are the small Protocols it is
given (consents, the citizen preview, attestations) and the frozen values it returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from broker.attestation.statement import Attestation, DocumentFacts
from broker.audit.log import Appended
from broker.consent.model import ConsentQuery
from broker.core.pseudonym import Pseudonym
from broker.policy.engine import Decision
from broker.policy.input import ConsentStatus
from broker.subjects.preview import HeldExchange


class NoConsents:
    """A port that finds no consent: consent-required flows deny (tests without consents)."""

    def status(self, query: ConsentQuery, now: dt.datetime) -> ConsentStatus:
        return "none"


@dataclass(frozen=True)
class Caller:
    client_id: str
    party_id: str
    client_name: str = ""


#: What an attestation states about a proof document (never its content).
ATTESTED_FIELDS = (
    "document.type",
    "document.issuer",
    "document.verified_by",
    "document.verified_at",
    "document.verification_method",
    "document.sha256",
)


#: What a document answer releases: the document itself, with its type and hash.
DOCUMENT_FIELDS = ("document.type", "document.sha256", "document.content")


class PreviewPort(Protocol):
    def hold(
        self,
        *,
        exchange_id: str,
        subject: Pseudonym,
        requester_party: str,
        agreement_id: str,
        dataset: str,
        purpose: str,
        fields: Sequence[str],
        ttl_seconds: int,
    ) -> HeldExchange: ...

    def status(self, exchange_id: str) -> HeldExchange: ...

    def release(self, exchange_id: str) -> bool: ...


class Attester(Protocol):
    def attest(
        self,
        *,
        subject: Pseudonym,
        document: DocumentFacts,
        exchange_id: str,
        recipient_party: str,
        agreement_id: str,
        now: dt.datetime,
    ) -> Attestation: ...


@dataclass(frozen=True)
class ExchangeResult:
    """A 200 answer."""

    exchange_id: str
    decision: Decision
    record: dict[str, Any] | None
    match: bool | None
    appended: Appended
    attestations: list[dict[str, Any]] | None = None
    held: HeldExchange | None = None
    """Set when the exchange is held for the citizen's preview (a 202 answer)."""
    document: AsyncIterator[bytes] | None = None
    """``document`` mode: the content, already checked against its SHA-256 before the first
    chunk, to stream after the log entry is durable."""
    document_sha256: str | None = None

    def body(self) -> dict[str, Any]:
        if self.held is not None:
            return {
                "exchange_id": self.exchange_id,
                "status": "held",
                "detail": "held until the citizen approves it through the council's portal",
                "status_url": f"/v1/exchanges/{self.exchange_id}/preview",
                "expires_at_ms": self.held.expires_at_ms,
                "then": "when approved, send the same request again with "
                f'"preview_id": "{self.exchange_id}"',
                "receipt": self.appended.to_receipt(),
            }
        d = self.decision
        o = d.obligations
        body: dict[str, Any] = {
            "exchange_id": self.exchange_id,
            "decision": {
                "allow": d.allow,
                "released_fields": list(d.released_fields),
                "withheld_fields": [
                    {"field": w.field, "reason": w.reason} for w in d.withheld_fields
                ],
                "obligations": {
                    "retain_until": o.retain_until.isoformat() if o.retain_until else None,
                    "notify_provider": o.notify_provider is not None,
                    "review_break_glass": o.review_break_glass,
                },
                "lawful_basis": list(d.matched.lawful_basis) if d.matched else [],
                "policy_revision": d.revision,
            },
            "receipt": self.appended.to_receipt(),
        }
        if self.attestations is not None:
            body["attestations"] = self.attestations
        elif self.match is not None:
            # A yes/no answer releases no values: say which claims were checked instead.
            body["decision"]["withheld_fields"] = []
            body["decision"]["verified_claims"] = list(d.verified_claims)
            body["match"] = self.match
        else:
            body["record"] = self.record
        return body


@dataclass(frozen=True)
class DatasetFacts:
    owner: str
    subject_types: frozenset[str]
    consent_agreements: frozenset[str] = frozenset()
    """Agreements with a consent-required flow on this dataset: only then is consent looked up
    (the policy still decides; without a lookup it sees ``none``)."""
