"""The ``attest`` and ``document`` modes of an exchange: signed statements about a subject's
verified proof documents, or one such document streamed.

Called by :mod:`broker.exchange.service` once the decision allows (``fetch`` and ``verify`` are
in the service itself).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from broker.attestation.statement import document_facts
from broker.core.errors import Unavailable
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import Pseudonym
from broker.exchange.ports import ATTESTED_FIELDS, Attester, SourcesPort
from broker.policy.engine import Decision

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


async def attest(
    sources: SourcesPort,
    attester: Attester | None,
    *,
    dataset: str,
    subject: SubjectId,
    pseudonym: Pseudonym,
    decision: Decision,
    exchange_id: str,
    caller: Caller,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Fetch the subject's verified proof documents and attest each (never their content)."""
    if attester is None or decision.matched is None:  # checked before the fetch
        raise Unavailable("attestations are not configured")
    fetched = await sources.fetch(dataset, subject, ATTESTED_FIELDS)
    documents = fetched.get("document")
    if isinstance(documents, dict):
        documents = [documents]
    out = []
    for doc in documents or []:
        facts = document_facts(SimpleNamespace(**doc), decision.matched.provider)
        attestation = attester.attest(
            subject=pseudonym,
            document=facts,
            exchange_id=exchange_id,
            recipient_party=caller.party_id,
            agreement_id=decision.matched.agreement_id,
            now=now,
        )
        out.append(attestation.to_json())
    return out


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
