"""The ``verify``, ``attest`` and ``document`` modes of an exchange: a yes/no counted per record,
signed statements about a subject's verified proof documents, or one such document streamed.

Called by :mod:`broker.exchange.service` once the decision allows (``fetch`` is in the service
itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, Protocol

import structlog
from anyio import to_thread

from adapters.errors import DocumentAltered
from broker.attestation.statement import Audience, document_facts
from broker.core.errors import Unavailable
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.exchange.limits import RateLimited
from broker.exchange.ports import (
    ATTESTED_FIELDS,
    Attester,
    SourcesPort,
    VerificationAnswer,
    VerificationLimitPort,
)
from broker.exchange.request import ExchangeRequest
from broker.policy.engine import Decision

log = structlog.get_logger("broker.exchange")

NOT_EVERY_FACT = "the agreement does not permit every attested fact"


def refuse_partial_attestation(decision: Decision, attester: Attester | None) -> Decision:
    """An attestation states every fact or none: refuse rather than attest half."""
    if set(decision.released_fields) == set(ATTESTED_FIELDS) and attester is not None:
        return decision
    return replace(
        decision,
        allow=False,
        reasons=(*decision.reasons, NOT_EVERY_FACT),
        caller_reasons=(NOT_EVERY_FACT,),
    )


class Asked(Protocol):
    """Who asks about whom, and the decision (``Prepared`` in broker/exchange/service.py)."""

    @property
    def caller(self) -> Caller: ...
    @property
    def subject(self) -> SubjectId: ...
    @property
    def decision(self) -> Decision: ...


#: The identifier type under which a record's stable key is pseudonymised (never a subject's).
RECORD_KEY_TYPE = "source_record"


async def verify(
    sources: SourcesPort,
    limiter: VerificationLimitPort,
    pseudonyms: PseudonymKeyring,
    request: ExchangeRequest,
    asked: Asked,
    now: dt.datetime,
) -> bool:
    """Ask the source, then count the answer against the limits per record (its stable key,
    pseudonymised, whatever identifier was asked) and per party, flow and record. Over either
    limit, ``RateLimited`` is raised (and a line logged) and the answer never leaves."""
    dataset, caller, matched = request.dataset, asked.caller, asked.decision.matched
    answer = await sources.verify(dataset, asked.subject, dict(request.claims or {}))
    key = f"{dataset}\x00{answer.record_key}"  # keyed like subjects (broker/core/pseudonym.py)
    records = (
        pseudonyms.pseudonymise(RECORD_KEY_TYPE, key).value,
        *(p.value for p in pseudonyms.all_pseudonyms(RECORD_KEY_TYPE, key)),
    )
    counted = VerificationAnswer(
        dataset=dataset,
        records=tuple(dict.fromkeys(records)),
        party_id=caller.party_id,
        agreement_id=matched.agreement_id if matched else "",
        flow_id=matched.flow_id if matched else "",
        client_id=caller.client_id,
    )
    now_ms = int(now.timestamp() * 1000)
    try:
        await to_thread.run_sync(lambda: limiter.take(counted, now_ms))
    except RateLimited as e:
        log.info("verification limit reached", limit=e.extra.get("limit"), dataset=dataset)
        raise
    return answer.match


async def attest(
    sources: SourcesPort,
    attester: Attester | None,
    *,
    dataset: str,
    subject: SubjectId,
    pseudonym: Pseudonym,
    decision: Decision,
    exchange_id: str,
    audience: Audience,
    purpose: str,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Fetch the subject's verified proof documents and attest each (never their content) to
    ``audience``. Every document is read and hashed first: one whose content no longer matches
    its stored SHA-256 raises :class:`DocumentAltered` (502) and nothing is signed."""
    if attester is None or decision.matched is None:  # checked before the fetch
        raise Unavailable("attestations are not configured")
    fetched = await sources.fetch(dataset, subject, ATTESTED_FIELDS)
    documents = fetched.get("document")
    if isinstance(documents, dict):
        documents = [documents]
    provider, agreement_id = decision.matched.provider, decision.matched.agreement_id
    flow_id = decision.matched.flow_id
    facts = [document_facts(SimpleNamespace(**doc), provider) for doc in documents or []]
    for fact in facts:
        await check_content(sources, dataset, subject, fact.sha256)

    def sign_all() -> list[dict[str, Any]]:
        return [
            attester.attest(
                subject=subject,
                pseudonym=pseudonym,
                document=fact,
                dataset=dataset,
                purpose=purpose,
                exchange_id=exchange_id,
                audience=audience,
                agreement_id=agreement_id,
                flow_id=flow_id,
                now=now,
            ).to_json()
            for fact in facts
        ]

    return await to_thread.run_sync(sign_all)


async def check_content(
    sources: SourcesPort, dataset: str, subject: SubjectId, sha256: str
) -> None:
    """Read the whole document through the source and hash it: raises :class:`DocumentAltered`
    (or the adapter's own error) unless its content hashes to ``sha256`` at this moment."""
    hasher = hashlib.sha256()
    async for chunk in sources.stream_document(dataset, subject, sha256):
        hasher.update(chunk)
    if hasher.hexdigest() != sha256:
        raise DocumentAltered(
            "document content does not match its SHA-256", sha256=sha256, dataset=dataset
        )


async def open_document(
    sources: SourcesPort, dataset: str, subject: SubjectId, sha256: str
) -> AsyncIterator[bytes]:
    """The document's content as a stream whose first chunk is already read: the adapter checks
    the content against its hash before the first chunk, so a missing or altered document is
    answered (and logged) before any byte leaves."""
    chunks = sources.stream_document(dataset, subject, sha256)
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = b""
    return _prepend(first, chunks)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
